#!/bin/bash
# run-in-vm.sh - run a command inside a QEMU/TCG virtual machine that has a
# working /dev/kvm (KVM on QEMU's emulated AMD SVM), for hosts without KVM.
#
# Usage: tests/vmhost/run-in-vm.sh [--mem 4G] [--smp 2] [--timeout SECS]
#                                  [--env NAME=VALUE]... -- CMD [ARGS...]
#
# The VM boots Debian's own kernel (package linux-image-amd64) with a small
# busybox initramfs cached in build/vmhost/, loads kvm_amd, and runs CMD as
# root with the host's /usr and /etc (read-only, over 9p) and the repository
# (read-write, over 9p) at the same absolute path as on the host; the working
# directory is the caller's if it lies inside the repository, else the
# repository root. /tmp, /run, /var are fresh tmpfs. CMD's output (stdout and
# stderr together, through the VM's second serial port) is streamed to stdout;
# the kernel's console goes to a log whose tail is shown when the VM fails.
#
# Exit status: CMD's, or 124 when --timeout expired, or 125 when the VM did
# not boot or /dev/kvm did not come up (with a message on stderr).
#
# Environment: VMHOST_CACHE (default <repo>/build/vmhost), VMHOST_KVM_PARAMS and
# VMHOST_KVM_AMD_PARAMS (module parameters for kvm and kvm_amd), VMHOST_VERBOSE=1 (progress and the
# kernel's console log on stderr), VMHOST_CPU (QEMU -cpu, default max). CI and KVMIG_* variables are
# passed into the VM; add others with --env.
set -u

MEM=4G
SMP=2
TIMEOUT=1800
ENVS=()
die() { echo "vmhost: $*" >&2; exit 125; }
while [ $# -gt 0 ]; do
	case "$1" in
	--mem) MEM=$2; shift 2 ;;
	--smp) SMP=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--env) ENVS+=("$2"); shift 2 ;;
	--) shift; break ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || die "no command given (usage: $0 [options] -- CMD [ARGS...])"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
CACHE=${VMHOST_CACHE:-$REPO/build/vmhost}
VERBOSE=${VMHOST_VERBOSE:-0}
say() { [ "$VERBOSE" = 1 ] && echo "vmhost: $*" >&2; return 0; }

# ---- packages ---------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' \
	|| need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || need+=(linux-image-amd64)
command -v file >/dev/null || need=(file "${need[@]}")
if [ ${#need[@]} -gt 0 ]; then
	echo "vmhost: installing ${need[*]}" >&2
	[ "$(id -u)" = 0 ] || die "not root; install these Debian packages first: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >&2 \
			|| die "apt-get install ${need[*]} failed"
	}
fi

# ---- kernel -----------------------------------------------------------------
KVER=
for k in $(ls /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V); do
	[ -f "/lib/modules/$k/modules.dep" ] && KVER=$k
done
[ -n "$KVER" ] || die "no /boot/vmlinuz-*-amd64 with /lib/modules/<version>/modules.dep"
KERNEL=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER
[ -r "$KERNEL" ] || die "$KERNEL is not readable"

# ---- initramfs --------------------------------------------------------------
# Modules in load order: each one's dependencies (from modules.dep) first.
# veth and bridge: the two-host test bed (tests/netbed.sh); tls: kernel TLS for channel_tls.c
WANT_MODS="virtio_pci 9pnet_virtio 9p kvm_amd veth bridge tls"
declare -A SEEN=()
ORDER=()
add_mod() {	# path relative to $MODDIR
	local m=$1 deps d
	[ -n "${SEEN[$m]:-}" ] && return
	SEEN[$m]=1
	deps=$(grep -m1 "^$m:" "$MODDIR/modules.dep" | cut -d: -f2)
	for d in $deps; do add_mod "$d"; done
	ORDER+=("$m")
}
for n in $WANT_MODS; do
	p=$(grep -m1 -E "/${n//_/[-_]}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | cut -d: -f1)
	[ -n "$p" ] || die "module $n not found in $MODDIR/modules.dep"
	add_mod "$p"
done

INITRD=$CACHE/initramfs-$KVER.cpio.gz
KEY=$( { cat "$0"; echo "$KVER ${ORDER[*]}"; md5sum /bin/busybox; } | md5sum | cut -c1-16)
mkdir -p "$CACHE" || die "cannot create $CACHE"
if [ "$(cat "$INITRD.key" 2>/dev/null)" != "$KEY" ] || [ ! -s "$INITRD" ]; then
	say "building $INITRD"
	T=$(mktemp -d "$CACHE/initramfs.XXXXXX") || die "mktemp failed"
	mkdir -p "$T"/{bin,dev,proc,sys,newroot,mods}
	cp /bin/busybox "$T/bin/busybox"
	ln -s busybox "$T/bin/sh"
	i=0
	for m in "${ORDER[@]}"; do
		b=$(printf '%02d-%s' $i "$(basename "$m")")
		case "$m" in
		*.ko) cp "$MODDIR/$m" "$T/mods/$b" ;;
		*.ko.xz) xz -dc "$MODDIR/$m" >"$T/mods/${b%.xz}" ;;
		*.ko.zst) zstd -qdc "$MODDIR/$m" >"$T/mods/${b%.zst}" ;;
		*.ko.gz) gzip -dc "$MODDIR/$m" >"$T/mods/${b%.gz}" ;;
		*) die "unknown module format $m" ;;
		esac || die "cannot unpack $m"
		i=$((i + 1))
	done
	sed -n '/^#---INIT-BEGIN/,/^#---INIT-END/p' "$0" | sed '1d;$d' >"$T/init"
	chmod 755 "$T/init"
	(cd "$T" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$T.cpio.gz" \
		|| die "cpio failed"
	mv "$T.cpio.gz" "$INITRD"	# atomic: concurrent runs see the old or the new one
	echo "$KEY" >"$INITRD.key"
	rm -rf "$T"
fi

# ---- the run ----------------------------------------------------------------
RUN=$(mktemp -d "$CACHE/run.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$RUN"' EXIT
CWD=$(pwd -P)
case "$CWD/" in "$REPO"/*) ;; *) CWD=$REPO ;; esac
{
	echo "REPO=$(printf %q "$REPO")"
	echo "KVM_PARAMS=$(printf %q "${VMHOST_KVM_PARAMS:-}")"
	echo "KVM_AMD_PARAMS=$(printf %q "${VMHOST_KVM_AMD_PARAMS:-}")"
	echo "VERBOSE=$VERBOSE"
} >"$RUN/config"
{
	echo "cd $(printf %q "$CWD") || exit 126"
	for v in $(compgen -e | grep -E '^(CI|KVMIG_[A-Za-z0-9_]*)$'); do
		echo "export $v=$(printf %q "${!v}")"
	done
	for e in "${ENVS[@]:+${ENVS[@]}}"; do
		echo "export ${e%%=*}=$(printf %q "${e#*=}")"
	done
	printf 'exec'; printf ' %q' "$@"; echo
} >"$RUN/cmd.sh"

APPEND="console=ttyS0 panic=-1 rdinit=/init quiet"
ACCEL=tcg,thread=multi
[ "$SMP" = 1 ] && ACCEL=tcg
say "booting $KERNEL ($MEM, $SMP CPUs, timeout ${TIMEOUT}s)"
T0=$(date +%s%N)
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
	-nodefaults -no-user-config -display none -no-reboot \
	-accel "$ACCEL" -cpu "${VMHOST_CPU:-max}" -m "$MEM" -smp "$SMP" \
	-kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
	-serial file:"$RUN/console.log" \
	-chardev stdio,id=out,signal=off -serial chardev:out \
	-fsdev local,id=usr,path=/usr,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=usr,mount_tag=usr \
	-fsdev local,id=etc,path=/etc,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=etc,mount_tag=etc \
	-fsdev local,id=repo,path="$REPO",security_model=none,multidevs=remap \
	-device virtio-9p-pci,fsdev=repo,mount_tag=repo \
	-fsdev local,id=run,path="$RUN",security_model=none \
	-device virtio-9p-pci,fsdev=run,mount_tag=vmrun \
	</dev/null
QRC=$?
SECS=$(( ($(date +%s%N) - T0) / 1000000 ))
[ "$VERBOSE" = 1 ] && sed 's/^/vmhost: console: /' "$RUN/console.log" >&2
[ -s "$RUN/boot" ] && say "$(cat "$RUN/boot")"
console_tail() {
	cp "$RUN/console.log" "$CACHE/console-last.log" 2>/dev/null
	echo "vmhost: last lines of the VM's console (all of it: $CACHE/console-last.log):"
	tail -n 15 "$RUN/console.log" | sed 's/^/vmhost:   /'
} >&2
say "VM ran $((SECS / 1000)).$(printf %03d $((SECS % 1000)))s, qemu exit $QRC"
if [ $QRC = 124 ] || [ $QRC = 137 ]; then
	echo "vmhost: timeout after ${TIMEOUT}s; $(cat "$RUN/status" 2>/dev/null || { [ -s "$RUN/boot" ] && echo 'the command was still running' || echo 'the VM had not finished booting'; })" >&2
	exit 124
fi
[ -s "$RUN/status" ] || { console_tail; die "the VM did not boot or died before running the command (qemu exit $QRC)"; }
STATUS=$(cat "$RUN/status")
case "$STATUS" in
rc=*) exit "${STATUS#rc=}" ;;
*) console_tail; die "$STATUS" ;;
esac

# The initramfs's /init, cut out of this file when the initramfs is built.
#---INIT-BEGIN
#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
for m in /mods/*.ko; do
	case "$m" in *-kvm.ko|*-kvm-amd.ko) ;; *) insmod "$m" ;; esac
done
R=/newroot
O="trans=virtio,version=9p2000.L,msize=512000"
exit_vm() { sync; poweroff -f; sleep 10; }
mount -t tmpfs -o mode=755 root $R || fail "tmpfs"
mkdir -p $R/usr $R/etc $R/run/vmhost $R/dev $R/proc $R/sys $R/tmp $R/var/tmp
mount -t 9p -o $O vmrun $R/run/vmhost || { echo "vmhost: cannot mount the run share" >/dev/console; exit_vm; }
fail() { echo "$*" >$R/run/vmhost/status; exit_vm; }
. $R/run/vmhost/config
insmod /mods/*-kvm.ko $KVM_PARAMS
insmod /mods/*-kvm-amd.ko $KVM_AMD_PARAMS
mount -t 9p -o $O,ro usr $R/usr || fail "cannot mount /usr over 9p"
mount -t 9p -o $O,ro etc $R/etc || fail "cannot mount /etc over 9p"
mkdir -p $R$REPO
mount -t 9p -o $O repo $R$REPO || fail "cannot mount $REPO over 9p"
for d in bin sbin lib lib32 lib64 libx32; do
	[ -e $R/usr/$d ] && ln -s usr/$d $R/$d
done
mount -t devtmpfs dev $R/dev
# bash's process substitution needs /dev/fd (udev would make these links)
ln -sfn /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t tmpfs -o mode=1777 tmp $R/tmp
chmod 1777 $R/var/tmp
mkdir -p $R/root
if [ ! -c /dev/kvm ]; then
	fail "/dev/kvm did not come up in the VM: $(dmesg | grep -iE 'kvm|svm' | tail -n 3 | tr '\n' ' ')"
fi
# loopback for the tests that migrate between two agents over 127.0.0.1
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null ||
	fail "cannot bring up the loopback interface"
echo "kvm up $(cut -d' ' -f1 /proc/uptime)s after kernel start" >$R/run/vmhost/boot
stty -F /dev/ttyS1 -opost -echo 2>/dev/null
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
	TERM=dumb LANG=C.UTF-8 chroot $R /bin/sh /run/vmhost/cmd.sh </dev/null >/dev/ttyS1 2>&1
echo "rc=$?" >$R/run/vmhost/status
exit_vm
#---INIT-END
