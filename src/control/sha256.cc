// SHA-256 from libsodium (crypto_hash_sha256), already linked for flow sync's MAC.
#include "control/sha256.h"

#include <sodium.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace l4lb::control {

std::string sha256Hex(std::string_view data) {
  // sodium_init() is idempotent and thread-safe; crypto_hash_sha256 needs it for the CPU
  // feature probe. It fails only when the library cannot work at all.
  if (sodium_init() < 0) throw std::runtime_error("libsodium: sodium_init failed");
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));  // lower case, as sha256sum(1)
  return hex;
}

std::string fileSha256Of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return sha256Hex(ss.str());
}

}  // namespace l4lb::control
