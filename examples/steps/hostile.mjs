// A hostile step, for the demo: it tries to read the host's password hashes and the
// renderer's secrets, reports what it found on stderr, then spins forever. The sandbox shows
// it nothing, and the wall-time limit ends it; the renderer gets a clean 'timeout'.
import fs from 'node:fs';

export default function hostile() {
  for (const path of ['/etc/shadow', '/root/.ssh/id_rsa', '/proc/1/environ', `${process.env.HOME ?? '/root'}/.aws/credentials`]) {
    try {
      console.log(`read ${path}: ${fs.readFileSync(path, 'utf8').length} bytes (!)`);
    } catch (err) {
      console.log(`read ${path}: ${err.code}`);
    }
  }
  for (;;) {
    // Burn CPU until the zygote's deadline.
  }
}
