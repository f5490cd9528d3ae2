// @enclave {"name": "chainlink-functions", "limits": {"wallTimeMs": 10000, "httpCalls": 5, "memoryMb": 128, "outputBytes": 640}, "output": ["bytes", "bytes"]}
// Runs a Chainlink Functions request, unchanged: its input is the subscription owner's address
// (20 bytes, written by FunctionsRouterAdapter) followed by the CBOR that Chainlink's
// FunctionsRequest library encodes (source, args, bytesArgs, a secrets reference), and the
// source runs with `args`, `bytesArgs`, `secrets` and `Functions` in scope, as Chainlink's
// runtime gives them. The answer is abi.encode(bytes response, bytes err), never both set, which
// FunctionsRouterAdapter hands to the client's handleOracleFulfillment.
//
// Secrets: the request's secrets reference is sealed to this agent's key for one purpose,
// "chainlink-functions:<chain id>:<adapter>:<subscription owner>" (`enclave secrets functions`),
// as Chainlink binds a DON's secrets to the subscription owner who encrypted them. They open only
// when the request comes from that adapter on that chain for that owner's subscription: a copy
// taken off the chain into another subscription, or into a contract posing as the adapter, is
// refused. This agent's own settings are never given to sources (they would be every tenant's).
//
// The manifest holds the answer to its shape and size whatever a source does to the globals this
// code uses (it runs in the same realm): the worker signs only abi.encode(bytes, bytes) of at most
// 640 bytes (a 256-byte response or error and its encoding), and the adapter refuses an answer
// with both set.
//
// Differences from Chainlink's DON (docs/from-chainlink-functions.md): secrets sealed to our keys
// instead of DON-hosted threshold encryption; no Deno imports; the hosts a source may fetch are
// this agent's manifest allow-list, set by whoever deploys it. The source runs as an async
// function in this agent's global scope: it sees its arguments and the globals, never `ctx` (the
// engine holds the host function in a closure, and a run's output and settling are not writable
// globals).

const MAX_RESPONSE_BYTES = 256;
const OWNER_BYTES = 20;
const SECRETS_REMOTE = 1;
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;

export default async function main(input, ctx) {
  let response = new Uint8Array(0);
  let error = "";
  try {
    if (input.bytes.length < OWNER_BYTES) throw new Error("the input carries no subscription owner");
    const owner = ctx.bytes.toHex(input.bytes.slice(0, OWNER_BYTES));
    const request = decodeRequest(input.bytes.slice(OWNER_BYTES));
    if (request.language !== 0) throw new Error(`unsupported language ${request.language}: only JavaScript (0)`);
    if (request.codeLocation !== 0) throw new Error("only inline source code is supported");
    // Opened before the source exists: nothing the source does can change whose secrets these are.
    const secrets = request.secrets === null ? Object.freeze({}) : openSecrets(ctx, request, owner);
    const run = new AsyncFunction("args", "bytesArgs", "secrets", "Functions", request.source);
    const result = await run(request.args, request.bytesArgs, secrets, functionsApi(ctx));
    response = asBytes(result);
    if (response.length > MAX_RESPONSE_BYTES) {
      throw new Error(`response of ${response.length} bytes exceeds the ${MAX_RESPONSE_BYTES}-byte limit`);
    }
  } catch (thrown) {
    response = new Uint8Array(0);
    error = thrown instanceof Error ? thrown.message : String(thrown);
  }
  // An error is cut to the response limit too, as Chainlink's DON cuts it: the adapter's callback
  // gas covers an answer of that size, not any text a source throws.
  const errorBytes = ctx.bytes.fromText(error).slice(0, MAX_RESPONSE_BYTES);
  return ctx.abi.encode(["bytes", "bytes"], [ctx.bytes.toHex(response), ctx.bytes.toHex(errorBytes)]);
}

function openSecrets(ctx, request, owner) {
  if (request.secretsLocation !== SECRETS_REMOTE) {
    throw new Error("only secrets sealed to this runtime are supported (FunctionsRequest.addSecretsReference), not DON-hosted ones");
  }
  const purpose = `chainlink-functions:${ctx.request.chainId}:${ctx.request.consumer}:${owner}`;
  const { __for: sealedFor, ...secrets } = ctx.unseal(request.secrets);
  if (sealedFor !== purpose) {
    throw new Error("the secrets were sealed for another subscription owner, router or chain");
  }
  return Object.freeze(secrets);
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

// @chainlink/functions-toolkit's buildRequestCBOR writes one map instead (small numbers as plain
// integers); a request built off-chain with it and sent as bytes is read the same way.
function decodeRequest(bytes) {
  const reader = { bytes, at: 0 };
  let fields = Object.create(null);
  if (bytes.length > 0 && bytes[0] >> 5 === 5) {
    fields = readItem(reader);
    if (reader.at !== bytes.length) throw new Error("the request's CBOR has bytes after its map");
  }
  while (reader.at < bytes.length) {
    const key = readItem(reader);
    fields[key] = readItem(reader);
  }
  return {
    codeLocation: Number(fields.codeLocation ?? 0),
    language: Number(fields.language ?? 0),
    source: String(fields.source ?? ""),
    args: (fields.args ?? []).map(String),
    bytesArgs: (fields.bytesArgs ?? []).map(hex),
    secretsLocation: Number(fields.secretsLocation ?? 0),
    secrets: fields.secrets === undefined ? null : hex(fields.secrets),
  };
}

function hex(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new Error("expected a byte string in the request");
  return "0x" + Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
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
      const map = Object.create(null);
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
