/**
 * The connection to the current notebook's kernel, on the `ipyllmapps.models` comm.
 */

import { ISessionContext } from "@jupyterlab/apputils";
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel,
} from "@jupyterlab/notebook";
import { Kernel } from "@jupyterlab/services";
import { Token } from "@lumino/coreutils";
import { ISignal, Signal } from "@lumino/signaling";

import {
  IBankItem,
  IStateMessage,
  KernelMessage,
  parseMessage,
} from "./format";

/** The comm target that `%load_ext ipyllmapps` registers in the kernel. */
export const COMM_TARGET = "ipyllmapps.models";

/** How long the bank may take to answer before the sidebar gives up. */
const BANK_TIMEOUT_MS = 20000;

/**
 * Where the sidebar stands with the current notebook.
 *
 * - `no-notebook`: no notebook is open.
 * - `no-kernel`: the notebook has no running kernel.
 * - `connecting`: a comm is being opened.
 * - `not-loaded`: the kernel has not run `%load_ext ipyllmapps`.
 * - `connected`: the comm is open and `state` is the kernel's latest.
 */
export type ConnectionStatus =
  "no-notebook" | "no-kernel" | "connecting" | "not-loaded" | "connected";

/** The requests the kernel accepts; it refuses anything else. */
export type ModelsRequest =
  | { action: "list" }
  | { action: "unload"; name: string }
  | { action: "pin"; name: string }
  | { action: "unpin"; name: string }
  | { action: "move"; name: string; device: string }
  | { action: "bank"; lang: string };

/** The token other plugins use to share one connection. */
export const IModelsClient = new Token<ModelsClient>(
  "ipyllmapps:client",
  "The connection to the current notebook kernel's ipyllmapps model manager.",
);

/**
 * Follows the current notebook and keeps a comm open to its kernel.
 *
 * The comm is tried when a notebook becomes current, when its kernel starts or
 * restarts, after a cell that mentions `ipyllmapps` runs, and on `retry()`.
 * Every state the kernel pushes replaces `state` and emits `changed`.
 */
export class ModelsClient {
  constructor(tracker: INotebookTracker) {
    this._tracker = tracker;
    tracker.currentChanged.connect(this._onCurrentChanged, this);
    NotebookActions.executed.connect(this._onExecuted, this);
    this._watch(tracker.currentWidget);
  }

  /** Emitted whenever `status`, `state`, `error` or the bank changes. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  /** The kernel's latest models and devices, or `null` when not connected. */
  get state(): IStateMessage | null {
    return this._state;
  }

  /** The last error the kernel answered a model request with. */
  get error(): string | null {
    return this._error;
  }

  /** The question bank's items once asked for, or `null`. */
  get bank(): IBankItem[] | null {
    return this._bank;
  }

  /** Why the bank could not be listed, or `null`. */
  get bankError(): string | null {
    return this._bankError;
  }

  /** The notebook the sidebar describes. */
  get notebook(): NotebookPanel | null {
    return this._panel;
  }

  /** Send a request to the kernel; ignored when not connected. */
  send(request: ModelsRequest): void {
    if (this._comm === null || this._comm.isDisposed) {
      return;
    }
    this._error = null;
    this._comm.send(request);
    this._changed.emit();
  }

  /** Ask the kernel for the question bank (once per connection). */
  requestBank(lang = "en"): void {
    if (this._comm === null || this._bank !== null || this._bankPending) {
      return;
    }
    this._bankPending = true;
    this._bankError = null;
    this.send({ action: "bank", lang });
    window.setTimeout(() => {
      if (this._bankPending) {
        this._bankPending = false;
        this._bankError =
          "The question bank did not answer: is `ipyllmapps` up to date in this kernel?";
        this._changed.emit();
      }
    }, BANK_TIMEOUT_MS);
  }

  /** Insert a code cell holding `code` below the notebook's active cell. */
  insertBelow(code: string): void {
    const panel = this._panel;
    if (panel === null) {
      return;
    }
    const notebook = panel.content;
    NotebookActions.insertBelow(notebook);
    if (notebook.activeCell?.model.type !== "code") {
      NotebookActions.changeCellType(notebook, "code");
    }
    notebook.activeCell?.model.sharedModel.setSource(code);
  }

  /** Try to open the comm again (after loading the extension by other means). */
  retry(): void {
    void this._connect();
  }

  dispose(): void {
    this._tracker.currentChanged.disconnect(this._onCurrentChanged, this);
    NotebookActions.executed.disconnect(this._onExecuted, this);
    this._watch(null);
  }

  private _onCurrentChanged(
    _: INotebookTracker,
    panel: NotebookPanel | null,
  ): void {
    this._watch(panel);
  }

  private _watch(panel: NotebookPanel | null): void {
    if (this._panel !== null) {
      const context = this._panel.sessionContext;
      context.kernelChanged.disconnect(this._onKernelChanged, this);
      context.statusChanged.disconnect(this._onKernelStatus, this);
    }
    this._drop();
    this._panel = panel;
    if (panel === null) {
      this._setStatus("no-notebook");
      return;
    }
    const context = panel.sessionContext;
    context.kernelChanged.connect(this._onKernelChanged, this);
    context.statusChanged.connect(this._onKernelStatus, this);
    this._setStatus("connecting");
    void context.ready.then(() => {
      if (this._panel === panel) {
        void this._connect();
      }
    });
  }

  private _onKernelChanged(): void {
    this._drop();
    void this._connect();
  }

  private _onKernelStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === "restarting" || status === "autorestarting") {
      this._drop();
      this._probeWhenIdle = true;
      this._setStatus("not-loaded");
    } else if (status === "idle" && this._probeWhenIdle) {
      this._probeWhenIdle = false;
      void this._connect();
    } else if (status === "dead" || status === "unknown") {
      this._drop();
      this._setStatus("no-kernel");
    }
  }

  private _onExecuted(
    _: unknown,
    args: {
      notebook: unknown;
      cell: { model: { sharedModel: { getSource(): string } } };
    },
  ): void {
    if (this._panel === null || args.notebook !== this._panel.content) {
      return;
    }
    if (this._status === "connected" || this._status === "connecting") {
      return;
    }
    if (args.cell.model.sharedModel.getSource().includes("ipyllmapps")) {
      void this._connect();
    }
  }

  private async _connect(): Promise<void> {
    const panel = this._panel;
    const kernel = panel?.sessionContext.session?.kernel ?? null;
    if (panel === null) {
      return;
    }
    if (kernel === null) {
      this._setStatus("no-kernel");
      return;
    }
    this._drop();
    this._setStatus("connecting");

    const comm = kernel.createComm(COMM_TARGET);
    this._comm = comm;
    comm.onMsg = (msg) => this._receive(comm, msg.content.data);
    comm.onClose = () => {
      // An unknown target makes the kernel close the comm at once.
      if (this._comm === comm) {
        this._comm = null;
        this._state = null;
        this._setStatus("not-loaded");
      }
    };
    try {
      await comm.open({ action: "list" }).done;
    } catch {
      if (this._comm === comm) {
        this._comm = null;
        this._setStatus("not-loaded");
      }
    }
  }

  private _receive(comm: Kernel.IComm, data: unknown): void {
    if (comm !== this._comm) {
      return;
    }
    const message: KernelMessage | null = parseMessage(data);
    if (message === null) {
      return;
    }
    if (message.type === "state") {
      this._state = message;
      this._status = "connected";
    } else if (message.type === "bank") {
      this._bank = message.items;
      this._bankPending = false;
    } else if (message.type === "insert") {
      this.insertBelow(message.code);
      return;
    } else if (message.action === "bank") {
      this._bankError = message.message;
      this._bankPending = false;
    } else {
      this._error = message.message;
    }
    this._changed.emit();
  }

  private _drop(): void {
    const comm = this._comm;
    this._comm = null;
    this._state = null;
    this._error = null;
    this._bank = null;
    this._bankError = null;
    this._bankPending = false;
    if (comm !== null && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // The kernel is gone; there is nothing left to close.
      }
    }
  }

  private _setStatus(status: ConnectionStatus): void {
    this._status = status;
    this._changed.emit();
  }

  private _tracker: INotebookTracker;
  private _panel: NotebookPanel | null = null;
  private _comm: Kernel.IComm | null = null;
  private _status: ConnectionStatus = "no-notebook";
  private _state: IStateMessage | null = null;
  private _error: string | null = null;
  private _bank: IBankItem[] | null = null;
  private _bankError: string | null = null;
  private _bankPending = false;
  private _probeWhenIdle = false;
  private _changed = new Signal<this, void>(this);
}
