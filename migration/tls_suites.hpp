// Which TLS 1.3 cipher suite the host-to-host channel prefers. All three of TLS 1.3's usual
// suites stay allowed (a peer of another version or CPU still connects); the order says which one
// this host asks for first, and with OpenSSL's default the client's order decides.
//
// Why measured rather than fixed: a replication stream is CPU-bound on both hosts (each byte is
// encrypted once and decrypted once), and the faster AEAD depends on the CPU. With AES
// instructions AES-256-GCM runs at several GB/s and is first; without them (older or small CPUs,
// QEMU's TCG, where AES-NI is emulated) ChaCha20-Poly1305 is faster and, in software, free of
// AES's table-lookup timing leaks. Both have 256-bit keys: the choice never weakens the channel.
#pragma once

#include <string>

namespace bulkhead::migration {

// "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256" or the same with
// ChaCha20 first: whichever of AES-256-GCM and ChaCha20-Poly1305 sealed 64 KiB faster, best of
// six alternating turns, timed once per process (well under a millisecond with AES instructions,
// about 15 ms under TCG).
const std::string &tls13_ciphersuites();

} // namespace bulkhead::migration
