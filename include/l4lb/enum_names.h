// One name table per enum, used both to print a value and to parse an operator's word, so the
// two cannot drift apart (the "one list, many uses" of VPP's foreach_lb_error). An enum opts in
// by specialising EnumNames<E> with a constexpr array of {value, name}; a static_assert next to
// the table checks that it lists every value once (and, for 0..N-1 enums, in order).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace l4lb {

template <class E>
struct EnumName {
  E value;
  std::string_view name;
};

// Specialise with: static constexpr std::array<EnumName<E>, N> kTable{{...}};
template <class E>
struct EnumNames;

// "?" for a value missing from the table (only a cast from a bad integer can make one).
template <class E>
constexpr std::string_view enumName(E v) {
  for (const auto& e : EnumNames<E>::kTable)
    if (e.value == v) return e.name;
  return "?";
}

template <class E>
constexpr std::optional<E> parseEnum(std::string_view s) {
  for (const auto& e : EnumNames<E>::kTable)
    if (e.name == s) return e.value;
  return std::nullopt;
}

// The names in table order, ", "-separated: what an error message offers as the choices.
template <class E>
std::string enumNameList() {
  std::string out;
  for (const auto& e : EnumNames<E>::kTable) {
    if (!out.empty()) out += ", ";
    out += e.name;
  }
  return out;
}

// No value and no name listed twice, no empty name.
template <class E>
constexpr bool enumTableUnique() {
  const auto& t = EnumNames<E>::kTable;
  for (size_t i = 0; i < t.size(); i++) {
    if (t[i].name.empty()) return false;
    for (size_t j = i + 1; j < t.size(); j++)
      if (t[i].value == t[j].value || t[i].name == t[j].name) return false;
  }
  return true;
}

// For an enum whose values are 0..last: the table lists each of them once, in order.
template <class E>
constexpr bool enumTableDense(E last) {
  const auto& t = EnumNames<E>::kTable;
  if (t.size() != static_cast<size_t>(last) + 1) return false;
  for (size_t i = 0; i < t.size(); i++)
    if (static_cast<size_t>(t[i].value) != i) return false;
  return enumTableUnique<E>();
}

}  // namespace l4lb
