#include "control/sync/sync_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace l4lb::control {

namespace {

// Large enough for the key and a line ending; a bigger file is not a key file.
constexpr size_t kMaxKeyFileBytes = 256;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<SyncKey> parseSyncKey(std::string_view text, std::string& err) {
  if (text.size() >= 2 && text.substr(text.size() - 2) == "\r\n") text.remove_suffix(2);
  else if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.size() != 2 * kSyncKeyBytes) {
    err = "must hold 64 hex characters (a 32-byte key, e.g. from `openssl rand -hex 32`), got " +
          std::to_string(text.size()) + " characters";
    return std::nullopt;
  }
  SyncKey key{};
  for (size_t i = 0; i < kSyncKeyBytes; i++) {
    int hi = hexValue(text[2 * i]), lo = hexValue(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      err = "must hold 64 hex characters; character " + std::to_string(2 * i + (hi < 0 ? 1 : 2)) + " is not hex";
      return std::nullopt;
    }
    key[i] = uint8_t(hi << 4 | lo);
  }
  return key;
}

std::optional<SyncKey> readSyncKey(const std::string& path, std::string& err) {
  // O_NOFOLLOW would refuse a symlink to a well-protected file, which operators use (e.g. a
  // secret mounted elsewhere); the mode is checked on the file actually opened (fstat), so no
  // race between the check and the read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    err = "cannot open " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    err = "cannot stat " + path + ": " + std::strerror(errno);
    ::close(fd);
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    err = path + " is not a regular file";
    ::close(fd);
    return std::nullopt;
  }
  if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", unsigned(st.st_mode & 07777));
    err = path + " has mode " + mode + ": group/other may read the key; chmod 600 it";
    ::close(fd);
    return std::nullopt;
  }
  char buf[kMaxKeyFileBytes + 1];
  size_t len = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf + len, sizeof(buf) - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = "cannot read " + path + ": " + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0 || (len += size_t(n)) == sizeof(buf)) break;
  }
  ::close(fd);
  if (len > kMaxKeyFileBytes) {
    err = path + ": must hold 64 hex characters, the file is larger than " + std::to_string(kMaxKeyFileBytes) + " bytes";
    return std::nullopt;
  }
  std::string perr;
  auto key = parseSyncKey(std::string_view(buf, len), perr);
  if (!key) err = path + ": " + perr;
  std::memset(buf, 0, sizeof(buf));
  return key;
}

}  // namespace l4lb::control
