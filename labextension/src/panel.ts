/**
 * The sidebar: the current notebook's models, then the question bank.
 */

import { Widget } from "@lumino/widgets";

import { BankSection } from "./bank";
import { ConnectionStatus, ModelsClient } from "./client";
import { element, renderModels } from "./models";

/** How often the "last used" times are redrawn. */
const TICK_MS = 30000;

const MESSAGES: { [status in ConnectionStatus]: string } = {
  "no-notebook": "Open a notebook to see the models its kernel holds.",
  "no-kernel": "This notebook has no running kernel.",
  connecting: "Connecting to the kernel…",
  "not-loaded": "Run `%load_ext ipyllmapps` in this notebook.",
  connected: "",
};

/**
 * The ipyllmapps sidebar widget.
 */
export class ModelsPanel extends Widget {
  constructor(client: ModelsClient, onAsk: () => void) {
    super();
    this._client = client;
    this.addClass("jp-ipyllmapps-panel");

    this._header = element("div", "jp-ipyllmapps-header");
    this._message = element("div", "jp-ipyllmapps-message");
    this._retry = element("button", "jp-ipyllmapps-button", "Retry");
    this._retry.title = "Look for the extension in the kernel again";
    this._retry.addEventListener("click", () => client.retry());
    this._models = element("div", "jp-ipyllmapps-models-section");
    this._bank = new BankSection(client, onAsk);

    this.node.append(
      this._header,
      this._message,
      this._retry,
      element("div", "jp-ipyllmapps-section", "Models"),
      this._models,
      this._bank.node,
    );
    client.changed.connect(this.render, this);
    this._timer = window.setInterval(() => this.render(), TICK_MS);
    this.render();
  }

  /** Redraw everything from the client's current state. */
  render(): void {
    const client = this._client;
    const status = client.status;
    const name = client.notebook?.context.path.split("/").pop() ?? "";
    this._header.textContent = name ? `Kernel of ${name}` : "ipyllmapps";
    this.node.dataset.status = status;

    this._message.textContent = MESSAGES[status];
    this._message.hidden = status === "connected";
    this._retry.hidden = status !== "not-loaded";

    renderModels(this._models, client);
    this._bank.render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearInterval(this._timer);
    this._client.changed.disconnect(this.render, this);
    super.dispose();
  }

  private _client: ModelsClient;
  private _header: HTMLElement;
  private _message: HTMLElement;
  private _retry: HTMLButtonElement;
  private _models: HTMLElement;
  private _bank: BankSection;
  private _timer: number;
}
