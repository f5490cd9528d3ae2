// Runs before the agent's module, in the agent's QuickJS context. Builds `ctx` and the input
// object on one host function, __host(name, argsJson) -> resultJson, so that every capability
// the host adds (fetch, secrets, storage, agent calls) is one more name, not one more binding.
//
// It also tells the engine, in `__failureKind`, whether a failed run hit one of QuickJS's own
// limits (see "How a run failed" below): the status a worker signs comes from there and from
// the host's records, never from the text of an error, which any agent can write.
(() => {
  // -- How a run failed --------------------------------------------------------------------------
  // QuickJS reports its memory and stack limits by throwing an InternalError whose message is
  // exactly "out of memory" or "stack overflow". The constructor is captured here and removed
  // from the global object before the agent's module runs, so an agent cannot build one with
  // `new InternalError(...)`. An error is the engine's when its prototype is InternalError's
  // (compared with functions captured now, which the agent cannot replace) and its message is
  // one of those two. What an agent can still do is limited to its own run: once it holds an
  // InternalError that the engine threw (at a limit it really hit, or a cheaper one such as
  // "too many arguments" from spreading 65536 values), it can reach the prototype and build
  // another that passes, and so end its own run with RESOURCE_LIMIT rather than AGENT_ERROR.
  // Nothing of another agent's run is reachable from here: a callee runs in a context of its
  // own, and its failure reaches its caller as a plain Error from ctx.callAgent.
  // The host function is held here and removed from the global object: an agent reaches the
  // host only through `ctx`, and code an agent runs on others' behalf (a source given in its
  // input, as the Chainlink Functions runtime runs) reaches it not at all.
  const host = globalThis.__host;
  delete globalThis.__host;

  const InternalErrorPrototype = globalThis.InternalError.prototype;
  const getPrototypeOf = Object.getPrototypeOf;
  const errorText = Function.prototype.call.bind(Error.prototype.toString);
  delete globalThis.InternalError;

  // Only reads and comparisons: under a real out-of-memory there may be no room to allocate.
  const engineLimit = (error) => {
    if (error === null || typeof error !== "object" || getPrototypeOf(error) !== InternalErrorPrototype) return null;
    const message = error.message;
    if (message === "out of memory") return "memory";
    if (message === "stack overflow") return "stack";
    return null;
  };

  // "memory", "stack" or null; readable by the engine as the global __failureKind, which has no
  // setter and cannot be redefined (the engine reads no global the agent can write for a status).
  let failureKind = null;
  Object.defineProperty(globalThis, "__failureKind", { get: () => failureKind });

  // An error thrown while the module's top level runs reaches the engine as text only: the
  // binding converts it with toString. For an InternalError that is this function, which
  // classifies the error object itself on the way. A value that is not an InternalError
  // (`throw "InternalError: out of memory"`) never comes here and leaves null. The last
  // InternalError converted during the top level decides: an agent that converts a real one
  // itself (String(e)) and then throws something else keeps that, for its own run only. Once
  // __run starts, failures are classified in its handler from the value main rejected with.
  let topLevel = true;
  Object.defineProperty(InternalErrorPrototype, "toString", {
    value: function toString() {
      if (topLevel) failureKind = engineLimit(this);
      return errorText(this);
    },
  });

  const BIGINT = "$bigint";
  const encode = (value) =>
    JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? { [BIGINT]: v.toString() } : v));
  const decode = (text) =>
    JSON.parse(text, (_key, v) =>
      v !== null && typeof v === "object" && typeof v[BIGINT] === "string" ? BigInt(v[BIGINT]) : v,
    );

  const call = (name, ...args) => {
    const reply = decode(host(name, encode(args)));
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

  // Made when the run starts, not when the prelude loads: a sandbox process loads the prelude into
  // a fresh context before it has a job, so what is the job's (its secrets, its request) is asked
  // for only then.
  const makeCtx = () => {
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
      // The request at hand: `consumer`, the contract that asked, and `chainId` (empty and 0 when
      // another agent calls).
      request: Object.freeze(call("request")),
      // Opens secrets sealed to this agent for a purpose (carried inside an input of the agent's own
      // format), with the purpose under `__for`: compare it with the request before using them.
      unseal: (sealed) => Object.freeze(call("unseal", bytesArg(sealed))),
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
    return ctx;
  };

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

  // Shown when the thrown value cannot be turned into text (its toString throws, or there is no
  // memory left to build the text).
  const UNSHOWABLE = "the agent threw a value that cannot be shown as text";

  // What the engine reads of a run: getters over this closure's variables, neither writable nor
  // redefinable, so that only main's own settling sets them (code running inside the agent
  // cannot declare a run settled, or write its output). Assigning them needs no allocation,
  // which matters for a run at its memory limit.
  let settled = false;
  let failure = null;
  let output = null;
  let started = false;
  for (const [name, read] of [["__settled", () => settled], ["__failure", () => failure], ["__output", () => output]]) {
    Object.defineProperty(globalThis, name, { get: read });
  }

  const run = (inputHex) => {
    if (started) return; // once per run: a second call could hand a second `ctx` out
    started = true;
    topLevel = false;
    failureKind = null;
    const main = globalThis.__agentMain;
    if (typeof main !== "function") {
      failure = "the agent has no default export function (export default async function main(input, ctx))";
      settled = true;
      return;
    }
    Promise.resolve()
      .then(() => main(makeInput(inputHex), makeCtx()))
      // Converting the output is part of the run: its errors (a cyclic value, no memory left)
      // end the run like the agent's own, rather than leaving it unsettled.
      .then(toOutput)
      .then(
        (converted) => {
          output = converted;
          settled = true;
        },
        (error) => {
          // First, before anything allocates: the status must not depend on building the text.
          failureKind = engineLimit(error);
          let text = UNSHOWABLE;
          try {
            text =
              error instanceof Error ? `${error.name}: ${error.message}\n${error.stack || ""}`.trim() : String(error);
          } catch (_) {
            // keep UNSHOWABLE
          }
          failure = text;
          settled = true;
        },
      );
  };
  Object.defineProperty(globalThis, "__run", { value: run });
})();
