// Example of a step that misbehaves: it allocates memory, 8 MiB at a time and every page
// touched, until something stops it. Under a memory limit that is the kernel's OOM killer,
// inside the step's own cgroup.
export default function memoryHog() {
  const hoard = [];
  for (;;) hoard.push(Buffer.alloc(8 << 20, 1));
}
