// A 3-instruction tc BPF program (call bpf_set_hash_invalid; r0 = TC_ACT_OK; exit) attached at
// ingress of a router's client-facing veth. On veth, a forwarded packet keeps the sending
// socket's random L4 hash (skb->l4_hash), and the kernel's multipath hash policy 1 reuses it
// instead of hashing the 5-tuple (net/ipv4/route.c fib_multipath_hash, net/ipv6/route.c
// rt6_multipath_hash: "short-circuit if we already have L4 hash present"). Clearing it makes
// forwarding a function of the 5-tuple, as on a real NIC with RX hashing off. Loaded with
// bpf(2) from Debian's python3 (no compiler needed), pinned in a private bpffs mount, attached
// with `tc ... bpf da object-pinned`. Helper 41 is set_hash_invalid in include/uapi/linux/bpf.h.

import { execFileSync } from 'node:child_process';
import { checkIfname } from '../validate.js';

const LOADER = String.raw`
import ctypes, os, sys, subprocess, tempfile, struct
libc = ctypes.CDLL(None, use_errno=True)
SYS_bpf = 321 if os.uname().machine == 'x86_64' else 280
def fail(what): sys.exit(what + ': ' + os.strerror(ctypes.get_errno()))
insns = struct.pack('<BBhi', 0x85, 0, 0, 41) + struct.pack('<BBhi', 0xb7, 0, 0, 0) + struct.pack('<BBhi', 0x95, 0, 0, 0)
lic = ctypes.create_string_buffer(b'GPL')
code = ctypes.create_string_buffer(insns)
attr = ctypes.create_string_buffer(128)
struct.pack_into('<IIQQ', attr, 0, 3, 3, ctypes.addressof(code), ctypes.addressof(lic))
fd = libc.syscall(SYS_bpf, 5, attr, 128)
if fd < 0: fail('BPF_PROG_LOAD')
if libc.unshare(0x00020000) != 0: fail('unshare')
if libc.mount(b'none', b'/', None, 0x40000 | 0x4000, None) != 0: fail('mount private')
d = tempfile.mkdtemp()
if libc.mount(b'bpf', d.encode(), b'bpf', 0, None) != 0: fail('mount bpffs')
p = os.path.join(d, 'hash_invalidate')
path = ctypes.create_string_buffer(p.encode())
pin = ctypes.create_string_buffer(128)
struct.pack_into('<QI', pin, 0, ctypes.addressof(path), fd)
if libc.syscall(SYS_bpf, 6, pin, 128) != 0: fail('BPF_OBJ_PIN')
for dev in sys.argv[1:]:
    subprocess.run(['tc', 'qdisc', 'replace', 'dev', dev, 'clsact'], check=True)
    subprocess.run(['tc', 'filter', 'replace', 'dev', dev, 'ingress', 'pref', '1', 'bpf', 'da', 'object-pinned', p], check=True)
`;

/** Attaches the program at ingress of `devices` in namespace `ns`. */
export function invalidateRxHash(ns: string, devices: string[]): void {
  execFileSync('ip', ['netns', 'exec', ns, '/usr/bin/python3', '-c', LOADER, ...devices.map(checkIfname)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 20_000,
  });
}
