// Generic TOML reading for the config loader (toml++): diagnostics that name their place as
// "file:line:col: key.path: message" in file order, typed readers that each report their own
// error, and TableReader, through which the schema reads every table so that each key is named
// once: the key a schema never asks for is an unknown key (usually a typo), reported with the
// closest known key as a suggestion. Knows nothing of l4lb's sections; config_schema.h does.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <set>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <vector>

#include "l4lb/addr.h"
#include "l4lb/enum_names.h"

namespace l4lb::control::reader {

// Quotes operator text for a message; control characters are escaped so one error stays one line.
std::string quote(std::string_view s);
// "a.b" (or "b" at the root) and "a[3]": the key paths messages name.
std::string child(const std::string& path, std::string_view key);
std::string element(const std::string& path, size_t i);
// The candidate closest to `word` by edit distance, within a distance of 2 (further is more
// likely noise than the intended word), or empty. Ties go to the earlier candidate.
std::string_view closest(std::string_view word, std::span<const std::string_view> candidates);

// A value found in a table (or array) and the key path that names it.
struct Field {
  const toml::node* node = nullptr;  // null: the key is absent
  std::string path;
  explicit operator bool() const { return node != nullptr; }
  const toml::node& operator*() const { return *node; }
  const toml::node* operator->() const { return node; }
};

class Reader {
 public:
  explicit Reader(std::string name) : name_(std::move(name)) {}

  // The document, or nullopt after reporting the syntax error.
  std::optional<toml::table> parse(std::string_view text);

  void report(const toml::source_position& at, const std::string& path, const std::string& msg);
  void report(const toml::node& at, const std::string& path, const std::string& msg) {
    report(at.source().begin, path, msg);
  }
  void report(const Field& f, const std::string& msg) { report(*f.node, f.path, msg); }  // f present
  // A remark that does not fail the load: a default took effect that the operator may not have
  // meant ("file:line:col: key.path: note: message"). Kept apart from the errors.
  void note(const toml::node& at, const std::string& path, const std::string& msg);
  std::vector<std::string> takeNotes() { return std::move(notes_); }
  // "name: internal error: what", placed before every other message.
  void internalError(const std::string& what);

  bool failed() const { return !diags_.empty(); }
  // Every key the schema asked for (TableReader::get), as a dotted path without array indexes
  // ("vips.backends.health_check.port"): the keys the loader knows, for each table the
  // document has. Sorted, no duplicates.
  std::vector<std::string> askedKeys() const { return {asked_.begin(), asked_.end()}; }
  // Every table the schema read, as its TOML header ("[eal]", "[[vips.backends]]",
  // "[vips.health_check]"): for a document with every table, the file's sections. Sorted.
  std::vector<std::string> tableHeaders() const { return {tables_.begin(), tables_.end()}; }
  // Every message in file order; at one place, in the order they were found.
  std::vector<std::string> takeMessages();

  // ---- typed readers: each reports its own error and returns nullopt / nullptr on failure ----
  const toml::table* table(const Field& f);
  // An array whose elements are tables (null where an element is not); `header` names the TOML
  // form for the message ("[[ports]]").
  std::vector<const toml::table*> tableArray(const Field& f, std::string_view header);
  // The same for an array that must hold at least one table: `missing` is reported when it is
  // empty, or at `parent` (the table that should hold it) when it is absent.
  std::vector<const toml::table*> requiredTableArray(const Field& f, const toml::node& parent,
                                                     std::string_view header, const std::string& missing);
  std::optional<int64_t> integer(const Field& f, int64_t lo, int64_t hi);
  // Unsigned 32-bit with no meaningful upper bound of its own (core ids, megabytes).
  std::optional<uint32_t> unsignedInt(const Field& f);
  std::optional<bool> boolean(const Field& f);
  std::optional<std::string> string(const Field& f);
  // Seconds as an integer or a float (> 0, at most a day), returned in milliseconds.
  std::optional<uint32_t> secondsAsMs(const Field& f);
  // `want` restricts the family; nullopt accepts either.
  std::optional<IpAddr> address(const Field& f, std::optional<Family> want = std::nullopt);
  std::optional<Prefix> prefix(const Field& f, Family want);
  // A unicast station address (not zero, group bit clear).
  std::optional<MacAddr> mac(const Field& f);
  // One of the names in E's table (enum_names.h); the message lists them all.
  template <class E>
  std::optional<E> enumValue(const Field& f) {
    auto s = string(f);
    if (!s) return std::nullopt;
    if (auto v = parseEnum<E>(*s)) return v;
    report(f, "must be one of " + enumNameList<E>() + " (got " + quote(*s) + ")");
    return std::nullopt;
  }

 private:
  friend class TableReader;
  struct Diag {
    uint32_t line;
    uint32_t column;
    uint64_t seq;  // discovery order, which breaks ties at one place
    std::string text;
  };
  uint64_t nextSeq() { return next_seq_++; }
  void add(const toml::source_position& at, uint64_t seq, std::string text);

  std::string name_;
  std::set<std::string> asked_;
  std::set<std::string> tables_;
  std::vector<Diag> diags_;
  std::vector<std::string> notes_;
  uint64_t next_seq_ = 0;
};

// One table as the schema reads it. get() returns a key's Field and records the key as known;
// when the TableReader goes out of scope, every key of the table that get() was never asked for
// is reported as "unknown key" (with a "did you mean" among the known ones), placed in the
// message order as if it had been found when the table was opened. So the schema must ask for
// every key it accepts, whatever the other keys hold.
class TableReader {
 public:
  TableReader(Reader& r, const toml::table& t, std::string path) : TableReader(r, &t, std::move(path)) {}
  // The table at `f`; false (and reported by Reader::table) when `f` is not one, and then
  // get() finds nothing and no key is reported.
  TableReader(Reader& r, const Field& f) : TableReader(r, r.table(f), f.path) {}
  ~TableReader();
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;

  explicit operator bool() const { return t_ != nullptr; }
  Field get(std::string_view key);
  // Reports at the table itself, naming `key` (from get(): a required key that is absent, a
  // check across keys).
  void report(const Field& key, const std::string& msg) { r_.report(*t_, key.path, msg); }

  const toml::table& table() const { return *t_; }
  const std::string& path() const { return path_; }

 private:
  TableReader(Reader& r, const toml::table* t, std::string path);
  void reportUnknownKeys();
  // "unknown key" and the likeliest intent: a key of the table above that TOML's scoping put
  // here, the same key with its unit suffix (interval -> interval_ms), or the closest key.
  std::string unknownKeyMessage(std::string_view key, std::span<const std::string_view> known) const;

  Reader& r_;
  const toml::table* t_;  // null: not a table
  std::string path_;
  uint64_t seq_;
  std::vector<std::string> known_;  // in the order asked: ties in suggestions go to the first
};

}  // namespace l4lb::control::reader
