// The smallest agent: greets its input and proves where it ran with a hash of the greeting.
export default async function main(input, ctx) {
  const name = input.text || "world";
  const greeting = `Hello, ${name}!`;
  ctx.log("greeting", name);
  return { greeting, keccak256: ctx.hash.keccak256(greeting) };
}
