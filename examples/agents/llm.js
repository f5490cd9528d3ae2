// @enclave {"name": "llm", "allowHosts": ["api.openai.com"], "limits": {"httpCalls": 1, "wallTimeMs": 30000}}
// Asks an OpenAI-compatible chat model and returns its answer as UTF-8 text.
//
// Input (JSON): {"prompt": "...", "model": "gpt-4o-mini", "maxTokens": 200}, sent sealed with the
// secret OPENAI_API_KEY (enclave secrets encrypt / enclave request --secret), or with the key set
// as the owner's sealed setting. OPENAI_BASE_URL (a setting) points it at another provider; add
// that host to the allow-list when deploying (--allow-host).
export default async function main(input, ctx) {
  const { prompt, model = "gpt-4o-mini", maxTokens = 200 } = input.json();
  if (!prompt) throw new Error("the input needs a prompt");
  const apiKey = ctx.secrets.OPENAI_API_KEY;
  if (!apiKey) throw new Error("no OPENAI_API_KEY secret: seal one to this agent");
  const baseUrl = ctx.secrets.OPENAI_BASE_URL ?? "https://api.openai.com/v1";

  const response = await ctx.fetch(`${baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ model, max_tokens: maxTokens, messages: [{ role: "user", content: prompt }] }),
  });
  if (!response.ok) throw new Error(`the model endpoint answered ${response.status}`);
  const answer = response.json().choices?.[0]?.message?.content;
  if (typeof answer !== "string") throw new Error("the model endpoint gave no answer");
  ctx.log(`${model} answered ${answer.length} characters`);
  // Keep within the on-chain output cap of 4 KiB.
  return ctx.bytes.fromText(answer.slice(0, 1000));
}
