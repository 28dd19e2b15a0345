#!/bin/bash
# Runs the Debian package under a real systemd, on a machine (or container) that has none as
# PID 1: the package is installed into a copy-on-write overlay of / and systemd boots there in
# namespaces of its own (mount, PID, network with loopback only, UTS, IPC, cgroup), up to
# basic.target. Nothing of the host changes: dpkg's database, the account and the data
# live in the overlay (a tmpfs), and everything goes away with the namespaces.
# Manual (not in CI: it needs root with CAP_SYS_ADMIN, overlayfs and a cgroup2 mount).
#
#   packaging/deb/try-under-systemd.sh dist-pkg/arcline-email_0.1.0_amd64.deb
#
# It starts the unit, delivers a message on port 25, reads it over IMAPS, reloads and stops the
# server, installs again (postinst restarts it) and removes the package (prerm stops it),
# printing what systemd says at each step.
set -euo pipefail
deb=$(realpath "$1")
work=$(mktemp -d /tmp/arcline-systemd-XXXXXX)
cgroot=$(findmnt -n -o TARGET -t cgroup2 | head -1)
cg="$cgroot/arcline-try-$$"
cleanup() {
  [ -n "${pid1:-}" ] && kill -KILL "$pid1" 2>/dev/null || true
  sleep 1
  [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/boot.sh" <<EOF
#!/bin/bash
set -e
mount --make-rprivate /
mkdir -p $work/t $work/m
mount -t tmpfs tmpfs $work/t
mkdir -p $work/t/upper $work/t/work
mount -t overlay overlay -o lowerdir=/,upperdir=$work/t/upper,workdir=$work/t/work $work/m
M=$work/m
mount -t proc proc \$M/proc
mount --bind \$M/proc/sys \$M/proc/sys && mount -o remount,bind,ro \$M/proc/sys
mount -t sysfs -o ro sysfs \$M/sys
mount -t cgroup2 none \$M/sys/fs/cgroup
mount --rbind /dev \$M/dev
mount -t tmpfs tmpfs \$M/run
cp $deb \$M/root/arcline.deb
rm -f \$M/usr/sbin/policy-rc.d   # a container's "start no services" policy, in the copy only
exec chroot \$M env container=other /lib/systemd/systemd --unit=basic.target
EOF
chmod 700 "$work/boot.sh"
mkdir "$cg"
bash -c "echo \$\$ > $cg/cgroup.procs; exec unshare -m -p -f -n -u -i -C $work/boot.sh" >"$work/boot.log" 2>&1 &
for _ in $(seq 50); do
  pid1=$(pgrep -P $! -x systemd || true)
  [ -n "$pid1" ] && break
  sleep 0.2
done
[ -n "$pid1" ] || { cat "$work/boot.log"; exit 1; }
ns() { nsenter -t "$pid1" -m -p -n -u -i -C -r -w "$@"; }
until ns systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'; do sleep 0.5; done

echo "== dpkg -i (first install: postinst enables and starts the unit)"
ns dpkg -i /root/arcline.deb | tail -1
ns sed -i 's|^# hostname = "mx.example.org"|hostname = "mx.example.org"|' /etc/arcline/arcline.toml
ns arcline domain add example.org
echo 'correct-horse-42' | ns arcline user add alice@example.org --password-stdin
ns systemctl restart arcline
ready() { ns journalctl -u arcline -o cat | grep -c '"msg":"ready"' || true; }
until [ "$(ready)" -ge 2 ]; do sleep 0.5; done   # started by postinst, then restarted
ns systemctl status arcline --no-pager | head -8
main=$(ns systemctl show -p MainPID --value arcline)
echo "== the main process"
ns grep -E '^(Uid|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$main/status"
echo "== a message on port 25, read over IMAPS"
ns /usr/bin/python3 - <<'PY'
import imaplib, smtplib, ssl
with smtplib.SMTP('127.0.0.1', 25) as s:
    s.sendmail('bob@remote.example', ['alice@example.org'], 'Subject: under systemd\r\n\r\nhello\r\n')
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL('127.0.0.1', 993, ssl_context=ctx)
m.login('alice@example.org', 'correct-horse-42'); m.select('INBOX')
print(m.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')[1][0][1].decode().strip()); m.logout()
PY
echo "== systemctl reload, then stop"
ns systemctl reload arcline
ns systemctl stop arcline
ns journalctl -u arcline -o cat | grep -oE '"msg":"(TLS certificate reloaded|stopped)"'
echo "== dpkg -i again (postinst restarts it), then dpkg -r (prerm stops it)"
ns dpkg -i /root/arcline.deb | tail -1
ns systemctl is-active arcline
ns dpkg -r arcline-email | tail -1
ns systemctl is-active arcline || true
