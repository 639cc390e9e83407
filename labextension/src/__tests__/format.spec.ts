import {
  askCommand,
  buildView,
  formatAgo,
  formatBytes,
  groupBank,
  IStateMessage,
  parseMessage,
  statusText,
} from "../format";

const MB = 1024 * 1024;
const GB = 1024 * MB;

function state(): IStateMessage {
  return {
    type: "state",
    models: [
      {
        name: "tiny-bert",
        task: "embed",
        source: "/tmp/tiny-bert",
        framework: "torch",
        device: "cpu",
        dtype: "float32",
        parameters: 1_234_567,
        bytes: 512 * MB,
        last_used: 1000,
        pinned: false,
      },
      {
        name: "smollm2",
        task: "lm",
        source: "smollm2",
        framework: "torch",
        device: "cuda:0",
        dtype: "float16",
        parameters: 135_000_000,
        bytes: 3 * GB,
        last_used: 400,
        pinned: true,
      },
    ],
    devices: [
      {
        device: "cpu",
        used: 512 * MB,
        budget: 2 * GB,
        free: 8 * GB,
        total: 16 * GB,
      },
      {
        device: "cuda:0",
        used: 3 * GB,
        budget: 3 * GB,
        free: 1 * GB,
        total: 8 * GB,
      },
    ],
  };
}

describe("formatBytes", () => {
  it.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1536, "1.5 KB"],
    [340 * MB, "340 MB"],
    [1.5 * GB, "1.5 GB"],
    [2048 * GB, "2048 GB"],
  ])("formats %p as %p like the kernel does", (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it("treats a missing number as zero", () => {
    expect(formatBytes(Number.NaN)).toBe("0 B");
  });
});

describe("formatAgo", () => {
  it.each([
    [100, 102, "just now"],
    [100, 142, "42 s ago"],
    [100, 100 + 3 * 60 + 10, "3 min ago"],
    [100, 100 + 2 * 3600, "2 h ago"],
    [100, 100 + 3 * 86400, "3 d ago"],
    [200, 100, "just now"],
  ])("says %p seen at %p is %p", (then, now, text) => {
    expect(formatAgo(then, now)).toBe(text);
  });
});

describe("parseMessage", () => {
  it("accepts the four message types", () => {
    expect(parseMessage(state())?.type).toBe("state");
    expect(parseMessage({ type: "bank", items: [] })?.type).toBe("bank");
    expect(parseMessage({ type: "error", message: "no" })?.type).toBe("error");
    expect(parseMessage({ type: "insert", code: "%ask q1" })?.type).toBe(
      "insert",
    );
  });

  it.each([
    null,
    "state",
    { type: "state", models: [] },
    { type: "bank" },
    { type: "error" },
    { type: "insert", code: 3 },
    { type: "other", models: [], devices: [] },
  ])("rejects %p", (data) => {
    expect(parseMessage(data)).toBeNull();
  });
});

describe("buildView", () => {
  it("makes one row per model in the kernel order", () => {
    const view = buildView(state(), 1030);
    expect(view.models.map((m) => m.name)).toEqual(["tiny-bert", "smollm2"]);
    const [bert, lm] = view.models;
    expect(bert).toMatchObject({
      task: "embed",
      device: "cpu",
      memory: "512 MB",
      fraction: 0.25,
      lastUsed: "30 s ago",
      pinned: false,
    });
    expect(bert.title).toBe("/tmp/tiny-bert (torch, float32, 1.2M parameters)");
    expect(lm).toMatchObject({ memory: "3.0 GB", fraction: 1, pinned: true });
    expect(lm.lastUsed).toBe("10 min ago");
  });

  it("offers every other device, and always cpu, as a move target", () => {
    const [bert, lm] = buildView(state(), 1000).models;
    expect(bert.moveTargets).toEqual(["cuda:0"]);
    expect(lm.moveTargets).toEqual(["cpu"]);
  });

  it("offers no move when the kernel has only the cpu", () => {
    const only = state();
    only.models = only.models.slice(0, 1);
    only.devices = only.devices.slice(0, 1);
    expect(buildView(only, 1000).models[0].moveTargets).toEqual([]);
  });

  it("describes each device against its budget", () => {
    const [cpu, gpu] = buildView(state(), 1000).devices;
    expect(cpu).toMatchObject({
      device: "cpu",
      fraction: 0.25,
      text: "512 MB of 2.0 GB",
    });
    expect(cpu.title).toBe(
      "cpu: models use 512 MB of a 2.0 GB budget; 8.0 GB free of 16 GB",
    );
    expect(gpu.fraction).toBe(1);
  });

  it("draws an empty bar when a device has no budget", () => {
    const odd = state();
    odd.devices[0].budget = 0;
    expect(buildView(odd, 1000).models[0].fraction).toBe(0);
    expect(buildView(odd, 1000).devices[0].fraction).toBe(0);
  });
});

describe("statusText", () => {
  it("counts the models and adds up their memory", () => {
    expect(statusText(state())).toBe("2 models · 3.5 GB");
  });

  it("says one model in the singular", () => {
    const one = state();
    one.models = one.models.slice(0, 1);
    expect(statusText(one)).toBe("1 model · 512 MB");
  });

  it("is empty when not connected", () => {
    expect(statusText(null)).toBe("");
    expect(statusText({ type: "state", models: [], devices: [] })).toBe(
      "0 models · 0 B",
    );
  });
});

describe("the question bank", () => {
  const items = [
    { id: "q1", title: "What is overfitting?", topic: "Basics", kind: "open" },
    { id: 2, title: "Why batch norm?", topic: "Training", kind: "choice" },
    { id: "q3", title: "Bias and variance", topic: "Basics", kind: "open" },
    {
      id: "P1",
      title: "Train a text classifier",
      topic: "NLP",
      kind: "problem",
    },
  ];

  it("asks a question by its q-number and a problem by its p-number", () => {
    expect(askCommand(items[0])).toBe("%ask q1");
    expect(askCommand(items[1])).toBe("%ask q2");
    expect(askCommand(items[3])).toBe("%ask p1");
  });

  it("groups by topic in bank order", () => {
    const groups = groupBank(items, "");
    expect(groups.map((g) => g.topic)).toEqual(["Basics", "Training", "NLP"]);
    expect(groups[0].items.map((i) => i.id)).toEqual(["q1", "q3"]);
  });

  it("filters on title, topic and kind, ignoring case", () => {
    expect(groupBank(items, "OVERFIT")[0].items.map((i) => i.id)).toEqual([
      "q1",
    ]);
    expect(groupBank(items, "choice")[0].topic).toBe("Training");
    expect(groupBank(items, "nothing like this")).toEqual([]);
  });
});
