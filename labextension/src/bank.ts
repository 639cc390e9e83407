/**
 * The question-bank section: browse the questions, click to ask one.
 */

import { ModelsClient } from "./client";
import { askCommand, groupBank, IBankItem } from "./format";
import { element } from "./models";

/**
 * The bank section's DOM; it asks the kernel for the bank when first opened.
 */
export class BankSection {
  readonly node: HTMLDetailsElement;

  constructor(client: ModelsClient, onAsk: () => void) {
    this._client = client;
    this._onAsk = onAsk;
    this.node = element("details", "jp-ipyllmapps-bank");
    const summary = element(
      "summary",
      "jp-ipyllmapps-section",
      "Question bank",
    );
    this._filter = element("input", "jp-ipyllmapps-bank-filter");
    this._filter.type = "search";
    this._filter.placeholder = "Filter questions";
    this._filter.addEventListener("input", () => this.render());
    this._body = element("div", "jp-ipyllmapps-bank-body");
    this.node.append(summary, this._filter, this._body);
    this.node.addEventListener("toggle", () => {
      if (this.node.open) {
        this._client.requestBank("en");
      }
    });
  }

  /** Redraw from the client's bank items. */
  render(): void {
    if (this.node.open && this._client.status === "connected") {
      this._client.requestBank("en");
    }
    const client = this._client;
    this._body.replaceChildren();
    if (client.status !== "connected") {
      this._body.appendChild(
        element(
          "div",
          "jp-ipyllmapps-empty",
          "Load ipyllmapps to see the bank.",
        ),
      );
      return;
    }
    if (client.bankError !== null) {
      this._body.appendChild(
        element("div", "jp-ipyllmapps-error", client.bankError),
      );
      return;
    }
    if (client.bank === null) {
      this._body.appendChild(
        element("div", "jp-ipyllmapps-empty", "Loading the questions…"),
      );
      return;
    }
    const groups = groupBank(client.bank, this._filter.value);
    if (groups.length === 0) {
      this._body.appendChild(
        element("div", "jp-ipyllmapps-empty", "No question matches."),
      );
      return;
    }
    for (const group of groups) {
      this._body.appendChild(
        element("div", "jp-ipyllmapps-bank-topic", group.topic),
      );
      const list = element("ul", "jp-ipyllmapps-bank-list");
      for (const item of group.items) {
        list.appendChild(this._item(item));
      }
      this._body.appendChild(list);
    }
  }

  private _item(item: IBankItem): HTMLElement {
    const command = askCommand(item);
    const row = element("li", "jp-ipyllmapps-bank-item");
    const link = element("button", "jp-ipyllmapps-bank-ask");
    link.title = `Insert \`${command}\` below the active cell`;
    link.append(
      element("span", "jp-ipyllmapps-bank-id", command.replace("%ask ", "")),
      element("span", "jp-ipyllmapps-bank-title", item.title),
      element("span", "jp-ipyllmapps-bank-kind", item.kind),
    );
    link.addEventListener("click", () => this._insert(command));
    row.appendChild(link);
    return row;
  }

  private _insert(command: string): void {
    this._client.insertBelow(command);
    this._onAsk();
  }

  private _client: ModelsClient;
  private _onAsk: () => void;
  private _filter: HTMLInputElement;
  private _body: HTMLElement;
}
