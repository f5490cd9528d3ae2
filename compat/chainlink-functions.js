// @enclave {"name": "chainlink-functions", "limits": {"wallTimeMs": 10000, "httpCalls": 5, "memoryMb": 128}}
// Runs a Chainlink Functions request, unchanged: its input is the CBOR that Chainlink's
// FunctionsRequest library encodes (source, args, bytesArgs, a secrets reference), and the
// source runs with `args`, `bytesArgs`, `secrets` and `Functions` in scope, as Chainlink's
// runtime gives them. The answer is abi.encode(bytes response, bytes err), never both set, which
// FunctionsRouterAdapter hands to the client's handleOracleFulfillment.
//
// Differences from Chainlink's DON (docs/from-chainlink-functions.md): no secrets yet (`secrets`
// is empty); no Deno imports; the hosts a source may fetch are this agent's manifest allow-list,
// set by whoever deploys it. The source runs as an async function in this agent's global scope:
// it sees its arguments and the globals, never `ctx` (the engine holds the host function in a
// closure, and a run's output and settling are not writable globals).

const MAX_RESPONSE_BYTES = 256;
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;

export default async function main(input, ctx) {
  let response = new Uint8Array(0);
  let error = "";
  try {
    const request = decodeRequest(input.bytes);
    if (request.language !== 0) throw new Error(`unsupported language ${request.language}: only JavaScript (0)`);
    if (request.codeLocation !== 0) throw new Error("only inline source code is supported");
    const run = new AsyncFunction("args", "bytesArgs", "secrets", "Functions", request.source);
    // No secrets yet: an unchanged client's request cannot carry secrets sealed to this agent,
    // and this agent's own settings would be every tenant's to read (docs/from-chainlink-functions.md).
    const result = await run(request.args, request.bytesArgs, Object.freeze({}), functionsApi(ctx));
    response = asBytes(result);
    if (response.length > MAX_RESPONSE_BYTES) {
      throw new Error(`response of ${response.length} bytes exceeds the ${MAX_RESPONSE_BYTES}-byte limit`);
    }
  } catch (thrown) {
    response = new Uint8Array(0);
    error = thrown instanceof Error ? thrown.message : String(thrown);
  }
  return ctx.abi.encode(["bytes", "bytes"], [ctx.bytes.toHex(response), ctx.bytes.toHex(ctx.bytes.fromText(error))]);
}

function asBytes(value) {
  // Copied into a plain Uint8Array: its length is the engine's, not a getter a subclass defines.
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new Error("returned value not an ArrayBuffer or Uint8Array");
}

// -- the Functions API, as Chainlink documents it -----------------------------------------------

function functionsApi(ctx) {
  return Object.freeze({
    makeHttpRequest: (options) => makeHttpRequest(ctx, options),
    encodeUint256,
    encodeInt256,
    encodeString: (text) => ctx.bytes.fromText(String(text)),
  });
}

async function makeHttpRequest(ctx, { url, method = "get", headers = {}, params, data, timeout = 3000, responseType = "json" } = {}) {
  try {
    const target = params ? `${url}${url.includes("?") ? "&" : "?"}${query(params)}` : url;
    const body = data === undefined ? undefined : typeof data === "string" ? data : JSON.stringify(data);
    const sent = { ...headers };
    if (body !== undefined && typeof data !== "string" && !Object.keys(sent).some((h) => h.toLowerCase() === "content-type")) {
      sent["Content-Type"] = "application/json";
    }
    const reply = await ctx.fetch(target, { method: method.toUpperCase(), headers: sent, body, timeoutMs: timeout });
    const parsed = responseType === "json" ? JSON.parse(reply.body) : responseType === "arraybuffer" ? ctx.bytes.fromText(reply.body).buffer : reply.body;
    const response = { data: parsed, status: reply.status, statusText: String(reply.status), headers: reply.headers };
    if (reply.status >= 400) {
      return { error: true, message: `request failed with status code ${reply.status}`, code: "ERR_BAD_RESPONSE", response, ...response };
    }
    return { error: false, response, ...response };
  } catch (thrown) {
    return { error: true, message: thrown instanceof Error ? thrown.message : String(thrown), code: "ERR_REQUEST" };
  }
}

function query(params) {
  return Object.entries(params)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
    .join("&");
}

function encodeUint256(value) {
  const n = BigInt(value);
  if (n < 0n || n >= 1n << 256n) throw new RangeError("encodeUint256 expects a value in [0, 2^256)");
  return word(n);
}

function encodeInt256(value) {
  let n = BigInt(value);
  if (n < -(1n << 255n) || n >= 1n << 255n) throw new RangeError("encodeInt256 expects a value in [-2^255, 2^255)");
  if (n < 0n) n += 1n << 256n;
  return word(n);
}

function word(n) {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

// -- CBOR, as Chainlink's FunctionsRequest.encodeCBOR writes it ---------------------------------
// Key/value pairs one after the other (no map header); numbers as bignum tags (2) over 32 bytes;
// arrays of indefinite length closed by a break (0xff); strings and bytes of definite length.

function decodeRequest(bytes) {
  const reader = { bytes, at: 0 };
  const fields = {};
  while (reader.at < bytes.length) {
    const key = readItem(reader);
    fields[key] = readItem(reader);
  }
  return {
    codeLocation: Number(fields.codeLocation ?? 0),
    language: Number(fields.language ?? 0),
    source: String(fields.source ?? ""),
    args: (fields.args ?? []).map(String),
    bytesArgs: (fields.bytesArgs ?? []).map((b) => "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")),
  };
}

const BREAK = Symbol("break");

function readItem(reader) {
  const initial = reader.bytes[reader.at++];
  if (initial === undefined) throw new Error("the request's CBOR ends too early");
  if (initial === 0xff) return BREAK;
  const major = initial >> 5;
  const length = readLength(reader, initial & 31);
  switch (major) {
    case 0:
      return length;
    case 1:
      return -1n - length;
    case 2:
      return take(reader, length);
    case 3:
      return utf8(take(reader, length));
    case 4:
      return readSequence(reader, length, () => readItem(reader));
    case 5: {
      const map = {};
      readSequence(reader, length, () => {
        const key = readItem(reader);
        if (key === BREAK) return BREAK;
        map[key] = readItem(reader);
        return null;
      });
      return map;
    }
    case 6: {
      const tagged = readItem(reader);
      if (length === 2n) return bignum(tagged);
      if (length === 3n) return -1n - bignum(tagged);
      return tagged;
    }
    default:
      throw new Error(`unsupported CBOR item ${initial}`);
  }
}

function readLength(reader, info) {
  if (info < 24) return BigInt(info);
  if (info === 31) return null; // indefinite
  const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
  if (size === undefined) throw new Error(`bad CBOR length ${info}`);
  let n = 0n;
  for (const byte of take(reader, BigInt(size))) n = (n << 8n) | BigInt(byte);
  return n;
}

function readSequence(reader, length, next) {
  const items = [];
  if (length === null) {
    for (let item = next(); item !== BREAK; item = next()) items.push(item);
  } else {
    for (let i = 0n; i < length; i++) items.push(next());
  }
  return items;
}

function take(reader, length) {
  const end = reader.at + Number(length);
  if (end > reader.bytes.length) throw new Error("the request's CBOR ends too early");
  const out = reader.bytes.slice(reader.at, end);
  reader.at = end;
  return out;
}

function bignum(bytes) {
  let n = 0n;
  for (const byte of bytes) n = (n << 8n) | BigInt(byte);
  return n;
}

function utf8(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return decodeURIComponent(escape(binary));
}
