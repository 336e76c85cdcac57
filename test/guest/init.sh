#!/bin/busybox sh
# /init of the cgroup v2 test guest (test/guest/initramfs.mjs packs it with busybox and the
# modules listed in /modules.order). Stage 1 mounts the host's root, read-only over 9p, under a
# tmpfs overlay (so tests may write anywhere and the host sees none of it), and switch_roots into
# it; stage 2 (below, run by the same script as the new pid 1) mounts what a systemd host would
# (cgroup2 with nsdelegate and memory_recursiveprot, no v1 controllers: cgroup_no_v1=all), runs
# the host's command and powers off. Every failure says what failed and powers off: the host
# reads the console and the missing status file.
B=/bin/busybox
G=/.zygote-guest

fail() {
  echo "zygote-guest: FAILED: $*"
  $B sync
  $B poweroff -f
  $B sleep 10
}

if [ "$1" != stage2 ]; then
  export PATH=/bin
  $B mount -t proc proc /proc || fail "mount /proc"
  $B mount -t sysfs sysfs /sys || fail "mount /sys"
  $B mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
  for m in $($B cat /modules.order); do
    $B insmod "/modules/$m" || fail "insmod $m"
  done
  $B mkdir -p /lower /upper /newroot
  # The virtio devices are probed as their drivers load; the tag shows up at once, but retry
  # briefly rather than rely on it.
  i=0
  until $B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,access=any,cache=loose hostroot /lower 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 50 ] || fail "mount the host root (9p tag hostroot)"
    $B sleep 0.1
  done
  $B mount -t tmpfs -o mode=0755 tmpfs /upper || fail "mount the overlay's tmpfs"
  $B mkdir -p /upper/data /upper/work
  $B mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work /newroot || fail "mount the overlay root"
  $B mkdir -p /newroot$G/results
  $B cp /bin/busybox /init /newroot$G/ || fail "copy busybox and init into the new root"
  $B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,access=any results /newroot$G/results || fail "mount the results share (9p tag results)"
  for d in proc sys dev; do $B mount --move /$d /newroot/$d || fail "move /$d"; done
  exec $B switch_root /newroot $G/busybox sh $G/init stage2
  fail "switch_root"
fi

# Stage 2: pid 1 in the host's root, with busybox at $G.
B=$G/busybox
R=$G/results
$B mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run || fail "mount /run"
# /tmp on ext4, as on a stock Debian host (the host's own mkfs, through the shared root): tmpfs
# takes no idmapped mounts before 6.3, and runStep's writable output is one. What the host's
# /tmp holds (a checkout there, as CI's is) is kept aside and put back on top of it.
$B mkdir -p /run/host-tmp
$B mount -o rbind /tmp /run/host-tmp || fail "keep the host's /tmp"
$B dd if=/dev/zero of=/run/tmp.img bs=1M count=0 seek=512 2>/dev/null || fail "make /run/tmp.img"
/usr/sbin/mkfs.ext4 -q -F /run/tmp.img || fail "mkfs.ext4 /run/tmp.img"
$B mount -o loop,nosuid,nodev /run/tmp.img /tmp || fail "mount /tmp (ext4 on a loop device)"
$B chmod 1777 /tmp
for d in /run/host-tmp/* /run/host-tmp/.[!.]*; do
  [ -d "$d" ] || continue
  n=${d##*/}
  $B mkdir -p "/tmp/$n" && $B mount -o rbind "$d" "/tmp/$n" || fail "put back /tmp/$n"
done
$B mkdir -p /dev/pts /dev/shm
$B mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts || fail "mount /dev/pts"
$B mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "mount /dev/shm"
$B mount -t securityfs securityfs /sys/kernel/security || fail "mount securityfs"
$B mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
$B ip link set lo up || fail "bring up lo"
$B hostname zygote-guest
echo "zygote-guest: ready after $($B cut -d' ' -f1 /proc/uptime) s of uptime"
[ -f $R/run.sh ] || fail "no run.sh in the results share"
# The command's own output goes to the console the host captures.
/bin/sh $R/run.sh </dev/null
echo $? > $R/status
echo "zygote-guest: the command exited $($B cat $R/status) at $($B cut -d' ' -f1 /proc/uptime) s of uptime"
$B sync
$B poweroff -f
