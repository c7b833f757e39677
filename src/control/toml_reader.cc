#include "control/toml_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace l4lb::control::reader {

namespace {

constexpr int64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
constexpr double kMaxSeconds = 86400;
constexpr size_t kMaxSuggestDistance = 2;

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) row[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string position(const std::string& name, const toml::source_position& at) {
  return name + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": ";
}

}  // namespace

std::string_view closest(std::string_view word, std::span<const std::string_view> candidates) {
  std::string_view best;
  size_t bestDist = kMaxSuggestDistance + 1;
  for (auto c : candidates) {
    size_t d = editDistance(word, c);
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string element(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// ---- Reader ----

std::optional<toml::table> Reader::parse(std::string_view text) {
  auto syntaxError = [&](const toml::parse_error& e) {
    const toml::source_position at = e.source().begin;
    add(at, nextSeq(), position(name_, at) + "syntax error: " + std::string(e.description()));
  };
#if TOML_EXCEPTIONS
  try {
    return toml::parse(text, std::string_view(name_));
  } catch (const toml::parse_error& e) {
    syntaxError(e);
    return std::nullopt;
  }
#else
  auto res = toml::parse(text, std::string_view(name_));
  if (!res) {
    syntaxError(res.error());
    return std::nullopt;
  }
  return std::move(res).table();
#endif
}

void Reader::add(const toml::source_position& at, uint64_t seq, std::string text) {
  diags_.push_back({at.line, at.column, seq, std::move(text)});
}

void Reader::report(const toml::source_position& at, const std::string& path, const std::string& msg) {
  add(at, nextSeq(), position(name_, at) + path + ": " + msg);
}

void Reader::note(const toml::node& at, const std::string& path, const std::string& msg) {
  notes_.push_back(position(name_, at.source().begin) + path + ": note: " + msg);
}

void Reader::internalError(const std::string& what) {
  add({0, 0}, nextSeq(), name_ + ": internal error" + (what.empty() ? "" : ": " + what));
}

std::vector<std::string> Reader::takeMessages() {
  // File order reads best; errors at the same place keep the order they were found in.
  std::sort(diags_.begin(), diags_.end(), [](const Diag& a, const Diag& b) {
    return std::tuple(a.line, a.column, a.seq) < std::tuple(b.line, b.column, b.seq);
  });
  std::vector<std::string> out;
  for (auto& d : diags_) out.push_back(std::move(d.text));
  diags_.clear();
  return out;
}

const toml::table* Reader::table(const Field& f) {
  if (auto* t = f->as_table()) return t;
  report(f, "must be a table");
  return nullptr;
}

std::vector<const toml::table*> Reader::tableArray(const Field& f, std::string_view header) {
  std::vector<const toml::table*> out;
  auto* arr = f->as_array();
  if (arr == nullptr) {
    report(f, "must be an array of tables (" + std::string(header) + ")");
    return out;
  }
  for (size_t i = 0; i < arr->size(); i++) {
    const toml::node& e = *arr->get(i);
    if (auto* t = e.as_table()) {
      out.push_back(t);
    } else {
      out.push_back(nullptr);
      report(e, element(f.path, i), "must be a table");
    }
  }
  return out;
}

std::vector<const toml::table*> Reader::requiredTableArray(const Field& f, const toml::node& parent,
                                                           std::string_view header, const std::string& missing) {
  if (!f) {
    report(parent, f.path, missing);
    return {};
  }
  auto tables = tableArray(f, header);
  if (f->is_array() && tables.empty()) report(f, missing);
  return tables;
}

std::optional<int64_t> Reader::integer(const Field& f, int64_t lo, int64_t hi) {
  auto* v = f->as_integer();
  if (v == nullptr) {
    report(f, "must be an integer");
    return std::nullopt;
  }
  int64_t x = v->get();
  if (x < lo || x > hi) {
    report(f, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
    return std::nullopt;
  }
  return x;
}

std::optional<uint32_t> Reader::unsignedInt(const Field& f) {
  auto* v = f->as_integer();
  if (v == nullptr) {
    report(f, "must be an integer");
    return std::nullopt;
  }
  int64_t x = v->get();
  if (x < 0) {
    report(f, "must be >= 0");
    return std::nullopt;
  }
  if (x > kMaxU32) {
    report(f, "must be <= " + std::to_string(kMaxU32));
    return std::nullopt;
  }
  return static_cast<uint32_t>(x);
}

std::optional<bool> Reader::boolean(const Field& f) {
  if (auto* v = f->as_boolean()) return v->get();
  report(f, "must be a boolean");
  return std::nullopt;
}

std::optional<std::string> Reader::string(const Field& f) {
  if (auto* v = f->as_string()) return v->get();
  report(f, "must be a string");
  return std::nullopt;
}

std::optional<uint32_t> Reader::secondsAsMs(const Field& f) {
  double s;
  if (auto* i = f->as_integer()) {
    s = static_cast<double>(i->get());
  } else if (auto* d = f->as_floating_point()) {
    s = d->get();
  } else {
    report(f, "must be a number (seconds)");
    return std::nullopt;
  }
  // Written so NaN fails too; a value that rounds to 0 ms would mean "expire at once".
  double ms = std::round(s * 1000.0);
  if (!(s > 0 && s <= kMaxSeconds) || ms < 1) {
    report(f, "must be > 0 and <= " + std::to_string(int64_t(kMaxSeconds)) + " seconds");
    return std::nullopt;
  }
  return static_cast<uint32_t>(ms);
}

std::optional<IpAddr> Reader::address(const Field& f, std::optional<Family> want) {
  auto s = string(f);
  if (!s) return std::nullopt;
  auto a = IpAddr::parse(*s);
  if (a && (!want || a->family == *want)) return a;
  std::string what = !want ? "an IPv4 or IPv6 address"
                           : (*want == Family::V4 ? "an IPv4 address" : "an IPv6 address");
  report(f, "must be " + what + " (got " + quote(*s) + ")");
  return std::nullopt;
}

std::optional<Prefix> Reader::prefix(const Field& f, Family want) {
  auto s = string(f);
  if (!s) return std::nullopt;
  auto p = Prefix::parse(*s);
  if (p && p->addr.family == want) return p;
  report(f, want == Family::V4 ? "must be an IPv4 prefix like 198.18.0.1/24 (got " + quote(*s) + ")"
                               : "must be an IPv6 prefix like 2001:db8::1/64 (got " + quote(*s) + ")");
  return std::nullopt;
}

std::optional<MacAddr> Reader::mac(const Field& f) {
  auto s = string(f);
  if (!s) return std::nullopt;
  auto m = MacAddr::parse(*s);
  if (!m) {
    report(f, "must be a MAC address like 02:00:00:00:00:01 (got " + quote(*s) + ")");
    return std::nullopt;
  }
  // Group bit set or all-zero: never a valid station address for a port or a next hop.
  if (m->isZero() || (m->bytes[0] & 1) != 0) {
    report(f, "must be a unicast MAC address (got " + quote(*s) + ")");
    return std::nullopt;
  }
  return m;
}

// ---- TableReader ----

namespace {

// The key path without the [N] of array elements ("vips.backends"), as Reader::asked_ holds it.
std::string genericPath(std::string_view path) {
  std::string out;
  for (size_t i = 0; i < path.size(); i++) {
    if (path[i] == '[') i = path.find(']', i);
    else out += path[i];
  }
  return out;
}

// Suffixes that give a key's unit: `interval = 5` most likely means interval_ms.
constexpr std::pair<std::string_view, std::string_view> kUnitSuffixes[] = {
    {"_ms", "milliseconds"}, {"_us", "microseconds"}, {"_mb", "megabytes"}, {"_pct", "percent"}};

}  // namespace

TableReader::TableReader(Reader& r, const toml::table* t, std::string path)
    : r_(r), t_(t), path_(std::move(path)), seq_(r.nextSeq()) {
  if (t_ != nullptr && !path_.empty()) {
    const std::string g = genericPath(path_);
    r_.tables_.insert(path_.back() == ']' ? "[[" + g + "]]" : "[" + g + "]");
  }
}

Field TableReader::get(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
  std::string path = child(path_, key);
  r_.asked_.insert(genericPath(path));
  return {t_ != nullptr ? t_->get(key) : nullptr, std::move(path)};
}

TableReader::~TableReader() {
  // A destructor must not throw; the only failure here is memory, and a config loader short of
  // memory has bigger problems than one missing message.
  try {
    reportUnknownKeys();
  } catch (...) {
  }
}

std::string TableReader::unknownKeyMessage(std::string_view k, std::span<const std::string_view> known) const {
  // Valid one level up: TOML put it here because it follows this table's header.
  const size_t dot = path_.rfind('.');
  const std::string parent = dot == std::string::npos ? "" : path_.substr(0, dot);
  if (!path_.empty() && r_.asked_.count(genericPath(child(parent, k))) != 0) {
    const std::string g = genericPath(path_);
    const std::string header = path_.back() == ']' ? "[[" + g + "]]" : "[" + g + "]";
    return "unknown key here: " + quote(k) + " is a key of " + (parent.empty() ? "the top level" : parent) +
           ", but TOML puts every key that follows a " + header + " header into that table; write it above the header";
  }
  for (auto [suffix, unit] : kUnitSuffixes)
    for (std::string_view c : known)
      if (c.size() == k.size() + suffix.size() && c.substr(0, k.size()) == k && c.substr(k.size()) == suffix)
        return "unknown key, did you mean " + quote(c) + "? (the value is in " + std::string(unit) + ")";
  std::string msg = "unknown key";
  if (auto s = closest(k, known); !s.empty()) msg += ", did you mean " + quote(s) + "?";
  return msg;
}

void TableReader::reportUnknownKeys() {
  if (t_ == nullptr) return;
  std::vector<std::string_view> known(known_.begin(), known_.end());
  for (auto&& [key, value] : *t_) {
    std::string_view k = key.str();
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    const std::string msg = unknownKeyMessage(k, known);
    const toml::source_position at = key.source().begin;
    r_.add(at, seq_, position(r_.name_, at) + child(path_, k) + ": " + msg);
  }
}

}  // namespace l4lb::control::reader
