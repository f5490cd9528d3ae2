// @enclave {"name": "word-count", "output": ["uint256", "string"], "limits": {"wallTimeMs": 2000}}
// Counts the words of its input and names the longest, answering in Solidity's ABI:
// abi.encode(uint256 words, string longest), which WordCountConsumer decodes.
export default async function main(input, ctx) {
  const words = input.text.split(/\s+/).filter((word) => word.length > 0);
  const longest = words.reduce((best, word) => (word.length > best.length ? word : best), "");
  ctx.log(`${words.length} words, the longest "${longest}"`);
  return "0x" + word(words.length) + word(64) + abiString(longest);
}

// One 32-byte ABI word for an unsigned integer.
function word(n) {
  return n.toString(16).padStart(64, "0");
}

// A string's ABI tail: its byte length, then its UTF-8 bytes padded to whole words.
function abiString(text) {
  const bytes = unescape(encodeURIComponent(text));
  let hex = "";
  for (let i = 0; i < bytes.length; i++) hex += bytes.charCodeAt(i).toString(16).padStart(2, "0");
  return word(bytes.length) + hex.padEnd(Math.ceil(hex.length / 64) * 64, "0");
}
