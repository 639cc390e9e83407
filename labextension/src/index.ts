/**
 * ipyllmapps for JupyterLab: the models sidebar, the question bank and a
 * status bar item, all fed by one comm to the current notebook's kernel.
 */

import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin,
} from "@jupyterlab/application";
import { INotebookTracker } from "@jupyterlab/notebook";
import { IStatusBar } from "@jupyterlab/statusbar";
import { LabIcon } from "@jupyterlab/ui-components";

import { IModelsClient, ModelsClient } from "./client";
import { ModelsPanel } from "./panel";
import { ModelsStatus } from "./status";

const PANEL_ID = "ipyllmapps-sidebar";

const chipIcon = new LabIcon({
  name: "ipyllmapps:chip",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M9 2h2v3H9zM13 2h2v3h-2zM9 19h2v3H9zM13 19h2v3h-2zM2 9h3v2H2zM2 13h3v2H2z' +
    'M19 9h3v2h-3zM19 13h3v2h-3z"/>' +
    '<path d="M6 6h12v12H6zm3 3v6h6V9z"/></g></svg>',
});

/** One connection to the current notebook's kernel, shared by the others. */
const client: JupyterFrontEndPlugin<ModelsClient> = {
  id: "ipyllmapps:client",
  description: "Follows the current notebook and talks to its model manager.",
  autoStart: true,
  requires: [INotebookTracker],
  provides: IModelsClient,
  activate: (_: JupyterFrontEnd, tracker: INotebookTracker) =>
    new ModelsClient(tracker),
};

/** The sidebar with the models and the question bank. */
const sidebar: JupyterFrontEndPlugin<void> = {
  id: "ipyllmapps:sidebar",
  description:
    "Shows the kernel's models, their memory, and the question bank.",
  autoStart: true,
  requires: [IModelsClient, ILabShell],
  activate: (app: JupyterFrontEnd, models: ModelsClient, shell: ILabShell) => {
    const panel = new ModelsPanel(models, () => {
      const notebook = models.notebook;
      if (notebook !== null) {
        shell.activateById(notebook.id);
      }
    });
    panel.id = PANEL_ID;
    panel.title.icon = chipIcon;
    panel.title.caption = "ipyllmapps: models and question bank";
    shell.add(panel, "right", { rank: 900 });
    app.commands.addCommand("ipyllmapps:open-sidebar", {
      label: "Show the ipyllmapps models sidebar",
      execute: () => shell.activateById(PANEL_ID),
    });
  },
};

/** The status bar item: number of models and memory in use. */
const status: JupyterFrontEndPlugin<void> = {
  id: "ipyllmapps:status",
  description: "Shows how many models the kernel holds and their memory.",
  autoStart: true,
  requires: [IModelsClient, IStatusBar],
  activate: (app: JupyterFrontEnd, models: ModelsClient, bar: IStatusBar) => {
    const item = new ModelsStatus(models, () =>
      app.commands.execute("ipyllmapps:open-sidebar"),
    );
    bar.registerStatusItem("ipyllmapps:status", {
      item,
      align: "left",
      rank: 5,
      isActive: () => models.status === "connected",
      activeStateChanged: models.changed,
    });
  },
};

export default [client, sidebar, status];
