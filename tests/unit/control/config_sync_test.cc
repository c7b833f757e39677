// [sync] (config_sync.cc, control/sync/sync_key.h): defaults, every key's accepted values, and
// each rejection's exact "file:line:col: key.path: message", the key file's checks included.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "control/config.h"
#include "control/sync/sync_key.h"

namespace l4lb::control {
namespace {

// Lines 1-9: a valid [eal], port and VIP; [sync] starts on line 10.
const std::string kBase =
    "[eal]\n"
    "worker_cores = [1]\n"
    "[[ports]]\n"
    "name = \"wan\"\n"
    "device = \"0000:01:00.0\"\n"
    "[[vips]]\n"
    "address = \"198.18.1.10\"\n"
    "[[vips.backends]]\n"
    "address = \"198.18.2.11\"\n";

const std::string kHexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";

class ConfigSync : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/l4lb_config_sync_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    key_ = writeKey("sync.key", kHexKey + "\n", 0600);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string writeKey(const std::string& name, const std::string& text, mode_t mode) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    EXPECT_EQ(::chmod(p.c_str(), mode), 0);
    return p;
  }
  // [sync] with the given lines after "[sync]" (line 10).
  ConfigResult load(const std::string& lines) { return loadConfigString(kBase + "[sync]\n" + lines, "t.toml"); }
  std::string errors(const std::string& lines) {
    ConfigResult r = load(lines);
    EXPECT_FALSE(r.ok());
    return r.error.str();
  }
  std::string valid(const std::string& skip = "") {
    std::string s;
    if (skip != "listen") s += "listen = \"198.18.40.11:7400\"\n";
    if (skip != "peers") s += "peers = [\"198.18.40.12:7400\", \"198.18.40.13:7401\"]\n";
    if (skip != "key_file") s += "key_file = \"" + key_ + "\"\n";
    return s;
  }

  std::string dir_, key_;
};

TEST_F(ConfigSync, AbsentMeansOff) {
  ConfigResult r = loadConfigString(kBase, "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_FALSE(r.config->sync.enabled);
  EXPECT_TRUE(r.config->sync.peers.empty());
  EXPECT_EQ(r.config->sync.announce_interval_ms, 2000u);
}

TEST_F(ConfigSync, EveryKey) {
  ConfigResult r = load(valid() + "announce_interval = 1.5\n");
  ASSERT_TRUE(r.ok()) << r.error.str();
  const SyncConfig& s = r.config->sync;
  EXPECT_TRUE(s.enabled);  // the table's presence enables it
  EXPECT_EQ(s.listen.str(), "198.18.40.11:7400");
  ASSERT_EQ(s.peers.size(), 2u);
  EXPECT_EQ(s.peers[0].str(), "198.18.40.12:7400");
  EXPECT_EQ(s.peers[1].str(), "198.18.40.13:7401");
  EXPECT_EQ(s.key_file, key_);
  for (size_t i = 0; i < kSyncKeyBytes; i++) EXPECT_EQ(s.key[i], i) << i;
  EXPECT_EQ(s.announce_interval_ms, 1500u);

  ConfigResult v6 = load("enabled = true\nlisten = \"[2001:db8:40::11]:7400\"\npeers = [\"[2001:db8:40::12]:7400\"]\n"
                         "key_file = \"" + key_ + "\"\n");
  ASSERT_TRUE(v6.ok()) << v6.error.str();
  EXPECT_EQ(v6.config->sync.listen.str(), "[2001:db8:40::11]:7400");
  EXPECT_EQ(v6.config->sync.peers.at(0).str(), "[2001:db8:40::12]:7400");
}

TEST_F(ConfigSync, DisabledNeedsNothingAndReadsNoKey) {
  ConfigResult r = load("enabled = false\n");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_FALSE(r.config->sync.enabled);
  // A missing key file is not an error while disabled; the keys are still checked.
  ConfigResult m = load("enabled = false\nkey_file = \"" + dir_ + "/absent\"\n");
  ASSERT_TRUE(m.ok()) << m.error.str();
  EXPECT_EQ(errors("enabled = false\nlisten = \"nope\"\n"),
            "t.toml:12:10: sync.listen: must be \"ADDR:PORT\" or \"[ADDR6]:PORT\" with a port 1..65535 (got \"nope\")");
  EXPECT_EQ(errors("enabled = false\nlisen = \"198.18.40.11:7400\"\n"),
            "t.toml:12:1: sync.lisen: unknown key, did you mean \"listen\"?");
}

TEST_F(ConfigSync, RequiredWhenEnabled) {
  EXPECT_EQ(errors(""),
            "t.toml:10:1: sync.listen: is required when sync is enabled (the UDP ADDR:PORT to bind)\n"
            "t.toml:10:1: sync.peers: is required when sync is enabled (the peers' ADDR:PORT)\n"
            "t.toml:10:1: sync.key_file: is required when sync is enabled (a file with the cluster's 32-byte key in hex)");
  EXPECT_EQ(errors(valid("peers") + "peers = []\n"), "t.toml:13:9: sync.peers: must list at least one peer when sync is enabled");
}

TEST_F(ConfigSync, EnabledAndListenErrors) {
  EXPECT_EQ(errors("enabled = 1\n" + valid()), "t.toml:11:11: sync.enabled: must be a boolean");
  EXPECT_EQ(errors("listen = \"198.18.40.11\"\n" + valid("listen")),
            "t.toml:11:10: sync.listen: must be \"ADDR:PORT\" or \"[ADDR6]:PORT\" with a port 1..65535 (got \"198.18.40.11\")");
  EXPECT_EQ(errors("listen = \"198.18.40.11:0\"\n" + valid("listen")).substr(0, 26), "t.toml:11:10: sync.listen:");
  EXPECT_EQ(errors("listen = \"224.0.0.1:7400\"\n" + valid("listen")),
            "t.toml:11:10: sync.listen: must be a unicast address (got \"224.0.0.1:7400\")");
  EXPECT_EQ(errors("listen = 7400\n" + valid("listen")), "t.toml:11:10: sync.listen: must be a string");
}

TEST_F(ConfigSync, PeersErrors) {
  const std::string rest = valid("peers");
  EXPECT_EQ(errors(rest + "peers = \"198.18.40.12:7400\"\n"),
            "t.toml:13:9: sync.peers: must be an array of \"ADDR:PORT\" strings");
  EXPECT_EQ(errors(rest + "peers = [\"198.18.40.12:7400\", \"198.18.40.12:7400\"]\n"),
            "t.toml:13:31: sync.peers[1]: 198.18.40.12:7400 is listed twice");
  EXPECT_EQ(errors(rest + "peers = [\"198.18.40.11:7400\"]\n"),
            "t.toml:13:10: sync.peers[0]: 198.18.40.11:7400 is sync.listen itself");
  EXPECT_EQ(errors(rest + "peers = [\"[2001:db8:40::12]:7400\"]\n"),
            "t.toml:13:10: sync.peers[0]: must be of the same family as sync.listen (198.18.40.11:7400)");
  EXPECT_EQ(errors(rest + "peers = [\"0.0.0.0:7400\"]\n"), "t.toml:13:10: sync.peers[0]: must not be the unspecified address");
  EXPECT_EQ(errors(rest + "peers = [\"239.1.1.1:7400\"]\n"),
            "t.toml:13:10: sync.peers[0]: must be a unicast address (got \"239.1.1.1:7400\")");
  EXPECT_EQ(errors(rest + "peers = [\"198.18.40.12\"]\n"),
            "t.toml:13:10: sync.peers[0]: must be \"ADDR:PORT\" or \"[ADDR6]:PORT\" with a port 1..65535 (got \"198.18.40.12\")");
  std::string many = "peers = [";
  for (int i = 0; i < 33; i++) many += std::string(i ? ", " : "") + "\"198.18.41." + std::to_string(i + 1) + ":7400\"";
  EXPECT_EQ(errors(rest + many + "]\n"), "t.toml:13:9: sync.peers: must list at most 32 peers");
}

TEST_F(ConfigSync, KeyFileErrors) {
  const std::string rest = valid("key_file");
  auto withKey = [&](const std::string& p) { return errors(rest + "key_file = \"" + p + "\"\n"); };
  EXPECT_EQ(withKey("sync.key"), "t.toml:13:12: sync.key_file: must be an absolute path (got \"sync.key\")");
  EXPECT_EQ(withKey(dir_ + "/absent"), "t.toml:13:12: sync.key_file: cannot open " + dir_ + "/absent: No such file or directory");
  EXPECT_EQ(withKey(dir_), "t.toml:13:12: sync.key_file: " + dir_ + " is not a regular file");
  const std::string g = writeKey("g.key", kHexKey, 0640);
  EXPECT_EQ(withKey(g), "t.toml:13:12: sync.key_file: " + g + " has mode 0640: group/other may read the key; chmod 600 it");
  const std::string o = writeKey("o.key", kHexKey, 0604);
  EXPECT_EQ(withKey(o), "t.toml:13:12: sync.key_file: " + o + " has mode 0604: group/other may read the key; chmod 600 it");
  const std::string shortKey = writeKey("short.key", kHexKey.substr(1), 0600);
  EXPECT_EQ(withKey(shortKey), "t.toml:13:12: sync.key_file: " + shortKey +
                                   ": must hold 64 hex characters (a 32-byte key, e.g. from `openssl rand -hex 32`), got 63 characters");
  std::string badHex = kHexKey;
  badHex[10] = 'g';
  const std::string notHex = writeKey("nothex.key", badHex, 0600);
  EXPECT_EQ(withKey(notHex), "t.toml:13:12: sync.key_file: " + notHex + ": must hold 64 hex characters; character 11 is not hex");
  const std::string big = writeKey("big.key", std::string(1000, 'a'), 0600);
  EXPECT_EQ(withKey(big), "t.toml:13:12: sync.key_file: " + big +
                              ": must hold 64 hex characters, the file is larger than 256 bytes");
  EXPECT_EQ(errors(rest + "key_file = 1\n"), "t.toml:13:12: sync.key_file: must be a string");
  // Accepted: 0400, and no line ending or CRLF.
  for (const auto& [name, text] : {std::pair{"a.key", kHexKey}, std::pair{"b.key", kHexKey + "\r\n"}}) {
    const std::string p = writeKey(name, text, 0400);
    ConfigResult r = load(rest + "key_file = \"" + p + "\"\n");
    ASSERT_TRUE(r.ok()) << r.error.str();
    EXPECT_EQ(r.config->sync.key[31], 0x1f);
  }
}

TEST_F(ConfigSync, AnnounceIntervalErrors) {
  const std::string rest = valid();
  EXPECT_EQ(errors(rest + "announce_interval = 0.05\n"), "t.toml:14:21: sync.announce_interval: must be between 0.1 and 3600 seconds");
  EXPECT_EQ(errors(rest + "announce_interval = 4000\n"), "t.toml:14:21: sync.announce_interval: must be between 0.1 and 3600 seconds");
  EXPECT_EQ(errors(rest + "announce_interval = 0\n"), "t.toml:14:21: sync.announce_interval: must be > 0 and <= 86400 seconds");
  EXPECT_EQ(errors(rest + "announce_interval = \"2s\"\n"), "t.toml:14:21: sync.announce_interval: must be a number (seconds)");
  // Not shorter than the shortest established-flow timeout (udp_timeout, 30 s by default).
  EXPECT_EQ(errors(rest + "announce_interval = 30\n"),
            "t.toml:14:21: sync.announce_interval: must be shorter than flow_table.udp_timeout and "
            "flow_table.tcp_established_timeout (30000 ms), or peers age live flows out");
  ConfigResult r = loadConfigString(kBase + "[flow_table]\nudp_timeout = 120\n[sync]\n" + rest + "announce_interval = 60\n", "t.toml");
  ASSERT_TRUE(r.ok()) << r.error.str();
  EXPECT_EQ(r.config->sync.announce_interval_ms, 60000u);
}

TEST(SyncKey, ParseRejectsWhatIsNotExactlyAKey) {
  std::string err;
  EXPECT_TRUE(parseSyncKey(kHexKey, err));
  EXPECT_TRUE(parseSyncKey(kHexKey + "\n", err));
  EXPECT_FALSE(parseSyncKey(kHexKey + "\n\n", err));
  EXPECT_FALSE(parseSyncKey(" " + kHexKey, err));
  EXPECT_FALSE(parseSyncKey(kHexKey + "00", err));
  EXPECT_FALSE(parseSyncKey("", err));
  EXPECT_EQ(err, "must hold 64 hex characters (a 32-byte key, e.g. from `openssl rand -hex 32`), got 0 characters");
}

}  // namespace
}  // namespace l4lb::control
