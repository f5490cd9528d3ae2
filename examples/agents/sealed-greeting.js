// Uses a secret that only a worker can read: it arrives sealed to this agent's key, the chain
// and the bridge carry only ciphertext, and the agent proves it knew the secret without
// revealing it (a hash binding the secret to this greeting).
export default async function main(input, ctx) {
  const secret = ctx.secrets.PASSPHRASE;
  if (!secret) throw new Error("send a PASSPHRASE secret: enclave secrets encrypt --agent ID PASSPHRASE=...");
  const greeting = `Hello, ${input.text || "world"}!`;
  return { greeting, proof: ctx.hash.keccak256(`${secret}:${greeting}`), secretLength: secret.length };
}
