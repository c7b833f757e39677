#include "l4lb/addr.h"

#include <gtest/gtest.h>

namespace l4lb {
namespace {

TEST(Addr, ParsesAndFormatsBothFamilies) {
  auto a = IpAddr::parse("198.18.0.1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->isV4());
  EXPECT_EQ(a->str(), "198.18.0.1");
  EXPECT_EQ(a->bytes[3], 1);
  EXPECT_EQ(a->bytes[4], 0);
  auto b = IpAddr::parse("2001:db8::1");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->isV4());
  EXPECT_EQ(b->str(), "2001:db8::1");
  EXPECT_FALSE(IpAddr::parse("198.18.0.256"));
  EXPECT_FALSE(IpAddr::parse("2001:db8:::1"));
  EXPECT_FALSE(IpAddr::parse(""));
}

TEST(Addr, PrefixContains) {
  auto p = Prefix::parse("198.18.0.1/24");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->contains(*IpAddr::parse("198.18.0.200")));
  EXPECT_FALSE(p->contains(*IpAddr::parse("198.18.1.1")));
  EXPECT_FALSE(p->contains(*IpAddr::parse("2001:db8::1")));
  auto q = Prefix::parse("2001:db8::1/61");
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->contains(*IpAddr::parse("2001:db8:0:7::1")));
  EXPECT_FALSE(q->contains(*IpAddr::parse("2001:db8:0:8::1")));
  EXPECT_FALSE(Prefix::parse("198.18.0.1/33"));
  EXPECT_FALSE(Prefix::parse("198.18.0.1"));
}

TEST(Addr, MacParse) {
  auto m = MacAddr::parse("02:00:0a:BB:cc:ff");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->str(), "02:00:0a:bb:cc:ff");
  EXPECT_FALSE(MacAddr::parse("02:00:0a:bb:cc"));
  EXPECT_FALSE(MacAddr::parse("02-00-0a-bb-cc-ff"));
  EXPECT_FALSE(MacAddr::parse("02:00:0a:bb:cc:fg"));
}

TEST(Addr, PrimeAndHash) {
  EXPECT_TRUE(isPrime(65537));
  EXPECT_TRUE(isPrime(655373));
  EXPECT_FALSE(isPrime(65536));
  EXPECT_FALSE(isPrime(1));
  EXPECT_NE(hash64("a", 1, 0), hash64("b", 1, 0));
  EXPECT_EQ(hash64("abcdefghij", 10, 7), hash64("abcdefghij", 10, 7));
}

}  // namespace
}  // namespace l4lb
