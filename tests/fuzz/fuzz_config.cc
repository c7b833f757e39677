// libFuzzer target: the config loader (src/control/config.h loadConfigString) on arbitrary text,
// then, for a config it accepts, the snapshot builder on stand-in ports (what a start or a
// reload does next). The loader never throws and returns either a config or at least one error
// message naming where (file:line:col); the builder either builds or explains why not.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"

using namespace l4lb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  control::ConfigResult r = control::loadConfigString(text, "fuzz.toml");
  if (!r.ok()) {
    if (r.error.messages.empty()) {
      fprintf(stderr, "fuzz_config: refused without an error message\n");
      abort();
    }
    for (const std::string& m : r.error.messages)
      if (m.rfind("fuzz.toml", 0) != 0) {
        fprintf(stderr, "fuzz_config: error message without its location: %s\n", m.c_str());
        abort();
      }
    return 0;
  }
  std::vector<control::PortRuntime> rt;
  for (size_t i = 0; i < r.config->ports.size(); i++) {
    control::PortRuntime p;
    p.port_id = uint16_t(i);
    p.mac.bytes = {0x02, 0, 0, 0, 0, uint8_t(i + 1)};
    if (r.config->ports[i].exception_path == control::ExceptionPath::Tap) p.tap_port_id = int32_t(100 + i);
    rt.push_back(p);
  }
  control::SnapshotBuilder b;
  control::BuildResult built = b.build(*r.config, rt);
  if (!built && built.joined().empty()) {
    fprintf(stderr, "fuzz_config: snapshot refused without a reason\n");
    abort();
  }
  return 0;
}
