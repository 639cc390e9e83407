/**
 * The status bar item: how many models the kernel holds and their memory.
 */

import { Widget } from "@lumino/widgets";

import { ModelsClient } from "./client";
import { statusText } from "./format";

/**
 * Shows `2 models · 1.2 GB` for the current notebook's kernel.
 */
export class ModelsStatus extends Widget {
  constructor(client: ModelsClient, onClick: () => void) {
    super();
    this._client = client;
    this.addClass("jp-ipyllmapps-status");
    this.node.title =
      "Models held by this kernel (click for the ipyllmapps sidebar)";
    this.node.addEventListener("click", onClick);
    client.changed.connect(this._update, this);
    this._update();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._client.changed.disconnect(this._update, this);
    super.dispose();
  }

  private _update(): void {
    this.node.textContent = statusText(this._client.state);
  }

  private _client: ModelsClient;
}
