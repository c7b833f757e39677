// libFuzzer target: one operator API request (src/control/api/handlers.h handleRequest) against
// the in-memory view the API unit tests use (tests/unit/control/api/fake_view.h): two VIPs, one
// worker. The reply must be a JSON object with "ok"; a refusal never throws out of handleRequest.
// A "diff FILE" request's argument is written to a temporary file whose path replaces it, so the
// command's config loading and comparison are fuzzed without reading the machine's files.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "fake_view.h"

using nlohmann::json;
using l4lb::control::api::handleRequest;
using l4lb::control::api::test::FakeView;

namespace {

std::string g_diff_path;

void removeDiffFile() { unlink(g_diff_path.c_str()); }

[[noreturn]] void fail(const char* what, const std::string& reply) {
  fprintf(stderr, "fuzz_api: %s: %s\n", what, reply.c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_diff_path = "/tmp/l4lb_fuzz_api_" + std::to_string(getpid()) + ".toml";
  atexit(removeDiffFile);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string request(reinterpret_cast<const char*>(data), size);
  json req = json::parse(request, nullptr, false);
  if (!req.is_discarded() && req.is_object() && req.contains("cmd") && req["cmd"] == "diff" &&
      req.contains("args") && req["args"].is_array() && !req["args"].empty() && req["args"][0].is_string()) {
    std::ofstream(g_diff_path, std::ios::trunc) << req["args"][0].get<std::string>();
    req["args"][0] = g_diff_path;
    request = req.dump();
  }  // otherwise handleRequest parses the same text the same way: no diff runs on another path
  // One view for the run (building one costs milliseconds: the workers' counter arrays), put
  // back to its first state after every input, so drains and weights do not leak into the next.
  static FakeView view;
  static const l4lb::control::DynamicState first_dyn = view.dyn;
  struct Restore {
    ~Restore() {
      view.dyn = first_dyn;
      if (!view.rebuilds.empty()) view.rebuild("fuzz: restore");
      view.rebuilds.clear();
      view.reloads = 0;
      view.asked.clear();
    }
  } restore;
  std::string reply;
  try {
    reply = handleRequest(view, request);
  } catch (const std::exception& e) {
    fail("handleRequest threw", e.what());
  }
  json r = json::parse(reply, nullptr, false);
  if (r.is_discarded() || !r.is_object() || !r.contains("ok") || !r["ok"].is_boolean())
    fail("reply is not a JSON object with a boolean \"ok\"", reply);
  if (r["ok"] == false && !(r.contains("error") && r["error"].is_string())) fail("refusal without an error", reply);
  return 0;
}
