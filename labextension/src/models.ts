/**
 * The models section: one row per loaded model, and the devices' memory.
 */

import { ModelsClient } from "./client";
import { buildView, IDeviceRow, IModelRow } from "./format";

/**
 * Render the models and devices of `client.state` into `node`.
 *
 * Buttons send `unload`, `pin` / `unpin` and `move` requests; the kernel
 * answers with a fresh state, which re-renders the section.
 */
export function renderModels(node: HTMLElement, client: ModelsClient): void {
  node.replaceChildren();
  const state = client.state;
  if (state === null) {
    return;
  }
  const view = buildView(state, Date.now() / 1000);

  const devices = element("div", "jp-ipyllmapps-devices");
  for (const device of view.devices) {
    devices.appendChild(deviceRow(device));
  }
  node.appendChild(devices);

  if (client.error !== null) {
    node.appendChild(element("div", "jp-ipyllmapps-error", client.error));
  }

  if (view.models.length === 0) {
    node.appendChild(
      element(
        "div",
        "jp-ipyllmapps-empty",
        "No model is loaded. Magics load them, or `%models load sentiment`.",
      ),
    );
    return;
  }
  const list = element("ul", "jp-ipyllmapps-models");
  for (const row of view.models) {
    list.appendChild(modelRow(row, client));
  }
  node.appendChild(list);
}

function deviceRow(device: IDeviceRow): HTMLElement {
  const row = element("div", "jp-ipyllmapps-device");
  row.title = device.title;
  row.append(
    element("span", "jp-ipyllmapps-device-name", device.device),
    bar(device.fraction),
    element("span", "jp-ipyllmapps-device-text", device.text),
  );
  return row;
}

function modelRow(row: IModelRow, client: ModelsClient): HTMLElement {
  const item = element("li", "jp-ipyllmapps-model");
  item.dataset.name = row.name;
  item.title = row.title;

  const head = element("div", "jp-ipyllmapps-model-head");
  head.append(
    element("span", "jp-ipyllmapps-model-name", row.name),
    element("span", "jp-ipyllmapps-model-task", row.task),
    element("span", "jp-ipyllmapps-model-device", row.device),
  );
  if (row.pinned) {
    head.appendChild(element("span", "jp-ipyllmapps-model-pinned", "pinned"));
  }

  const memory = element("div", "jp-ipyllmapps-model-memory");
  memory.append(
    bar(row.fraction),
    element("span", "jp-ipyllmapps-model-bytes", row.memory),
    element("span", "jp-ipyllmapps-model-used", row.lastUsed),
  );

  const actions = element("div", "jp-ipyllmapps-model-actions");
  actions.append(
    button(
      "Unload",
      "jp-mod-warn",
      `Unload ${row.name} and free its memory`,
      () => client.send({ action: "unload", name: row.name }),
    ),
    button(
      row.pinned ? "Unpin" : "Pin",
      "",
      row.pinned
        ? `Let the memory budget unload ${row.name} again`
        : `Keep ${row.name} loaded whatever the memory budget`,
      () =>
        client.send({ action: row.pinned ? "unpin" : "pin", name: row.name }),
    ),
    moveSelect(row, client),
  );

  item.append(head, memory, actions);
  return item;
}

function moveSelect(row: IModelRow, client: ModelsClient): HTMLElement {
  const select = document.createElement("select");
  select.className = "jp-ipyllmapps-move";
  select.title = row.moveTargets.length
    ? `Move ${row.name} to another device`
    : "No other device to move to";
  const prompt = new Option("Move to…", "", true, true);
  prompt.disabled = true;
  select.appendChild(prompt);
  for (const target of row.moveTargets) {
    select.appendChild(new Option(target, target));
  }
  select.disabled = row.moveTargets.length === 0;
  select.addEventListener("change", () => {
    if (select.value) {
      client.send({ action: "move", name: row.name, device: select.value });
    }
  });
  return select;
}

function bar(fraction: number): HTMLElement {
  const outer = element("span", "jp-ipyllmapps-bar");
  const inner = element("span", "jp-ipyllmapps-bar-fill");
  inner.style.width = `${Math.round(fraction * 100)}%`;
  if (fraction > 0.9) {
    inner.classList.add("jp-mod-full");
  }
  outer.appendChild(inner);
  return outer;
}

function button(
  label: string,
  extraClass: string,
  title: string,
  onClick: () => void,
): HTMLButtonElement {
  const node = element("button", "jp-ipyllmapps-button", label);
  if (extraClass) {
    node.classList.add(extraClass);
  }
  node.title = title;
  node.addEventListener("click", onClick);
  return node as HTMLButtonElement;
}

/** Create an element with a class and optional text. */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}
