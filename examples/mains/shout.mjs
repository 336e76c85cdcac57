// The serve example's main: what each child of `zygote serve --main` runs. It reads its stdin
// to the end and writes it back in capitals, after the label the client passed as its argument.
export default async function shout(label) {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  process.stdout.write(`${label}: ${text.toUpperCase()}`);
}
