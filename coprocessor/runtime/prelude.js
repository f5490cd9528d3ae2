// Runs before the agent's module, in the agent's QuickJS context. Builds `ctx` and the input
// object on one host function, __host(name, argsJson) -> resultJson, so that every capability
// the host adds (fetch, secrets, storage, agent calls) is one more name, not one more binding.
(() => {
  const BIGINT = "$bigint";
  const encode = (value) =>
    JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? { [BIGINT]: v.toString() } : v));
  const decode = (text) =>
    JSON.parse(text, (_key, v) =>
      v !== null && typeof v === "object" && typeof v[BIGINT] === "string" ? BigInt(v[BIGINT]) : v,
    );

  const call = (name, ...args) => {
    const reply = decode(__host(name, encode(args)));
    if ("error" in reply) throw new Error(reply.error);
    return reply.ok;
  };

  const HEX = /^0x([0-9a-fA-F]{2})*$/;
  const toHex = (bytes) => "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const fromHex = (hex) => {
    const out = new Uint8Array((hex.length - 2) / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 + 2 * i, 2), 16);
    return out;
  };
  // Bytes-like: a Uint8Array, a 0x hex string, or text (hashed as its UTF-8).
  const bytesArg = (data) => {
    if (data instanceof Uint8Array) return toHex(data);
    if (typeof data === "string" && HEX.test(data)) return data;
    if (typeof data === "string") return call("utf8.encode", data);
    throw new TypeError("expected a Uint8Array, a 0x hex string or a string");
  };

  const response = (r) => ({ ...r, text: () => r.body, json: () => JSON.parse(r.body) });
  // Another agent's output: its JSON value when it is UTF-8 JSON, else its bytes as 0x hex.
  const agentOutput = (hex) => {
    try {
      return JSON.parse(call("utf8.decode", hex));
    } catch (_) {
      return hex;
    }
  };

  const ctx = {
    log: (...args) =>
      call("log", args.map((a) => (typeof a === "string" ? a : encode(a))).join(" ")),
    hash: {
      keccak256: (data) => call("hash.keccak256", bytesArg(data)),
      sha256: (data) => call("hash.sha256", bytesArg(data)),
    },
    abi: {
      encode: (types, values) => call("abi.encode", types, values),
      decode: (types, data) => call("abi.decode", types, bytesArg(data)),
    },
    bytes: { toHex, fromHex, fromText: (text) => fromHex(call("utf8.encode", text)) },
    // Decrypted inside the worker only: from the request's sealed envelope and the owner's settings.
    secrets: Object.freeze(call("secrets")),
    // Sealed key-value state of this agent, shared by every worker of the cluster.
    fetch: async (url, options = {}) => response(call("fetch", url, options)),
    fetchAll: async (requests) => call("fetchAll", requests).map((r) => ("error" in r ? r : response(r))),
    callAgent: async (agentId, input = "0x") => agentOutput(call("callAgent", agentId, bytesArg(input)).output),
    storage: {
      get: (key) => call("storage.get", key),
      set: (key, value) => call("storage.set", key, value),
      delete: (key) => call("storage.delete", key),
    },
  };
  Object.freeze(ctx.storage);
  Object.freeze(ctx.hash);
  Object.freeze(ctx.abi);
  Object.freeze(ctx.bytes);

  const makeInput = (hex) => ({
    hex,
    bytes: fromHex(hex),
    get text() {
      return call("utf8.decode", hex);
    },
    json() {
      return JSON.parse(this.text);
    },
  });

  // Output: bytes as given (Uint8Array or 0x hex); anything else as the UTF-8 of its JSON.
  const toOutput = (value) => {
    if (value === undefined || value === null) return "0x";
    if (value instanceof Uint8Array) return toHex(value);
    if (typeof value === "string" && HEX.test(value)) return value;
    return call("utf8.encode", encode(value));
  };

  globalThis.__run = (inputHex) => {
    globalThis.__settled = false;
    const main = globalThis.__agentMain;
    if (typeof main !== "function") {
      globalThis.__settled = true;
      globalThis.__failure = "the agent has no default export function (export default async function main(input, ctx))";
      return;
    }
    Promise.resolve()
      .then(() => main(makeInput(inputHex), ctx))
      .then(
        (value) => {
          globalThis.__output = toOutput(value);
          globalThis.__settled = true;
        },
        (error) => {
          globalThis.__failure =
            error instanceof Error ? `${error.name}: ${error.message}\n${error.stack || ""}`.trim() : String(error);
          globalThis.__settled = true;
        },
      );
  };
})();
