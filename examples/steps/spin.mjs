// Example of a step that never finishes: it spins on the CPU until its wall time runs out.
export default function spin() {
  for (;;);
}
