/**
 * Pure helpers: turn the kernel's messages into what the sidebar shows.
 *
 * Nothing here touches the DOM or JupyterLab, so jest tests it directly.
 */

/** One model as the kernel describes it (`LoadedModel.record()`). */
export interface IModelRecord {
  name: string;
  task: string;
  source: string;
  framework: string;
  device: string;
  dtype: string;
  parameters: number;
  bytes: number;
  /** Seconds since the epoch, on the kernel's clock. */
  last_used: number;
  pinned: boolean;
}

/** One device as the kernel describes it (`ModelManager.devices()`). */
export interface IDeviceRecord {
  device: string;
  used: number;
  budget: number;
  free: number;
  total: number;
}

/** One question of the bank (`Question.summary()`). */
export interface IBankItem {
  id: string | number;
  title: string;
  topic: string;
  kind: string;
}

export interface IStateMessage {
  type: "state";
  models: IModelRecord[];
  devices: IDeviceRecord[];
}

export interface IBankMessage {
  type: "bank";
  items: IBankItem[];
}

export interface IErrorMessage {
  type: "error";
  message: string;
  /** The request that failed, when the kernel says which. */
  action?: string;
}

/** A cell the kernel asks to insert below the active one (`%ask pN`'s button). */
export interface IInsertMessage {
  type: "insert";
  code: string;
}

export type KernelMessage =
  IStateMessage | IBankMessage | IErrorMessage | IInsertMessage;

/** A model row ready to render. */
export interface IModelRow {
  name: string;
  task: string;
  device: string;
  memory: string;
  /** Share of the device's budget this model takes, 0..1. */
  fraction: number;
  lastUsed: string;
  pinned: boolean;
  /** Devices this model can be moved to. */
  moveTargets: string[];
  title: string;
}

/** A device row ready to render. */
export interface IDeviceRow {
  device: string;
  fraction: number;
  text: string;
  title: string;
}

export interface IView {
  models: IModelRow[];
  devices: IDeviceRow[];
}

const UNITS = ["B", "KB", "MB", "GB"];

/**
 * Format a byte count the way the kernel does: `1.5 GB`, `340 MB`, `12 KB`.
 */
export function formatBytes(bytes: number): string {
  let value = Number.isFinite(bytes) ? bytes : 0;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) {
    return `${Math.trunc(value)} B`;
  }
  const digits = Math.abs(value) < 10 ? 1 : 0;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/**
 * Say how long ago a kernel timestamp was: `just now`, `42 s ago`, `3 min ago`.
 */
export function formatAgo(epochSeconds: number, nowSeconds: number): string {
  const elapsed = Math.max(0, Math.round(nowSeconds - epochSeconds));
  if (elapsed < 5) {
    return "just now";
  }
  if (elapsed < 60) {
    return `${elapsed} s ago`;
  }
  if (elapsed < 3600) {
    return `${Math.floor(elapsed / 60)} min ago`;
  }
  if (elapsed < 86400) {
    return `${Math.floor(elapsed / 3600)} h ago`;
  }
  return `${Math.floor(elapsed / 86400)} d ago`;
}

/**
 * Check a comm message from the kernel; return `null` for anything unknown.
 */
export function parseMessage(data: unknown): KernelMessage | null {
  if (typeof data !== "object" || data === null) {
    return null;
  }
  const message = data as { [key: string]: unknown };
  switch (message.type) {
    case "state":
      if (Array.isArray(message.models) && Array.isArray(message.devices)) {
        return message as unknown as IStateMessage;
      }
      return null;
    case "bank":
      return Array.isArray(message.items)
        ? (message as unknown as IBankMessage)
        : null;
    case "error":
      return typeof message.message === "string"
        ? (message as unknown as IErrorMessage)
        : null;
    case "insert":
      return typeof message.code === "string"
        ? (message as unknown as IInsertMessage)
        : null;
    default:
      return null;
  }
}

/**
 * Build the sidebar's rows from a state message.
 *
 * Each model's bar is its share of its device's budget; models can move to
 * any other device the kernel reports, and always to `cpu`.
 */
export function buildView(state: IStateMessage, nowSeconds: number): IView {
  const budgets = new Map(state.devices.map((d) => [d.device, d.budget]));
  const deviceNames = new Set(state.devices.map((d) => d.device));
  deviceNames.add("cpu");

  const models = state.models.map((record) => {
    const budget = budgets.get(record.device) ?? 0;
    return {
      name: record.name,
      task: record.task,
      device: record.device,
      memory: formatBytes(record.bytes),
      fraction: share(record.bytes, budget),
      lastUsed: formatAgo(record.last_used, nowSeconds),
      pinned: record.pinned,
      moveTargets: [...deviceNames].filter((d) => d !== record.device).sort(),
      title:
        `${record.source} (${record.framework}, ${record.dtype}, ` +
        `${formatCount(record.parameters)} parameters)`,
    };
  });

  const devices = state.devices.map((device) => ({
    device: device.device,
    fraction: share(device.used, device.budget),
    text: `${formatBytes(device.used)} of ${formatBytes(device.budget)}`,
    title:
      `${device.device}: models use ${formatBytes(device.used)} of a ` +
      `${formatBytes(device.budget)} budget; ${formatBytes(device.free)} ` +
      `free of ${formatBytes(device.total)}`,
  }));

  return { models, devices };
}

/**
 * The status bar's text: `2 models · 1.2 GB`.
 */
export function statusText(state: IStateMessage | null): string {
  if (state === null) {
    return "";
  }
  const count = state.models.length;
  const bytes = state.models.reduce((sum, model) => sum + model.bytes, 0);
  const noun = count === 1 ? "model" : "models";
  return `${count} ${noun} · ${formatBytes(bytes)}`;
}

/**
 * The magic a bank item inserts: `%ask q3` for a question, `%ask p1` for a problem.
 *
 * A bare number is taken as a question number.
 */
export function askCommand(item: IBankItem): string {
  const id = String(item.id).trim().toLowerCase();
  return /^[qp]\d+$/.test(id) ? `%ask ${id}` : `%ask q${id}`;
}

/**
 * Group bank items by topic, keeping the bank's order; filter by `query`.
 */
export function groupBank(
  items: IBankItem[],
  query: string,
): Array<{ topic: string; items: IBankItem[] }> {
  const needle = query.trim().toLowerCase();
  const groups = new Map<string, IBankItem[]>();
  for (const item of items) {
    const haystack = `${item.id} ${item.title} ${item.topic} ${item.kind}`;
    if (needle && !haystack.toLowerCase().includes(needle)) {
      continue;
    }
    const topic = item.topic || "Other";
    if (!groups.has(topic)) {
      groups.set(topic, []);
    }
    groups.get(topic)!.push(item);
  }
  return [...groups].map(([topic, grouped]) => ({ topic, items: grouped }));
}

function share(part: number, whole: number): number {
  if (!(whole > 0)) {
    return 0;
  }
  return Math.min(1, Math.max(0, part / whole));
}

function formatCount(n: number): string {
  if (n >= 1e9) {
    return `${(n / 1e9).toFixed(1)}B`;
  }
  if (n >= 1e6) {
    return `${(n / 1e6).toFixed(1)}M`;
  }
  if (n >= 1e3) {
    return `${(n / 1e3).toFixed(1)}K`;
  }
  return String(n);
}
