#include "sidecar/protocol/messages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <variant>

#include "shared/frame_codec.h"

namespace cb::protocol {
namespace {

// The bytes of one frame holding `message`.
std::string Encode(const Message& message) {
  std::string out;
  const Status appended = AppendMessage(out, message, FrameLimits{});
  EXPECT_TRUE(appended.ok()) << appended.ToString();
  return out;
}

// The bytes of one frame holding [type, body], `body` packed as a msgpack array.
template <typename Body>
std::string EncodeShape(uint64_t type, const Body& body) {
  std::string out;
  const Status appended = AppendMessageFrame(out, std::forward_as_tuple(type, body), FrameLimits{});
  EXPECT_TRUE(appended.ok()) << appended.ToString();
  return out;
}

Result<Message> Decode(const std::string& frame) {
  FrameDecoder decoder;
  decoder.Append(frame);
  Result<std::optional<msgpack::object_handle>> next = decoder.Next();
  if (!next.ok()) return next.status();
  if (!next->has_value()) return Status::InvalidArgument("no whole frame");
  return DecodeMessage((*next)->get());
}

CacheOp SampleCacheOp() {
  CacheOp op;
  op.id = 77;
  op.cache = "session";
  op.key = "k1";
  op.key_command.command = Command::kSet;
  op.key_command.flags = 9;
  op.key_command.exptime = -3;
  op.key_command.data = std::string("v\0lue", 5);
  op.key_command.cas_unique = 1'234'567'890'123;
  op.key_command.delta = 5;
  op.key_command.value_too_large = true;
  op.known_clock = 0xfedc'ba98'7654'3210;
  op.known_server = 2;
  op.request = RequestId{3, 44, 555};
  return op;
}

// The wire type of each message is its place in this list; changing it changes
// the protocol (kProtocolVersion).
TEST(MessagesTest, WireTypesAreFixed) {
  EXPECT_EQ(Message(Hello{}).index(), 0u);
  EXPECT_EQ(Message(HelloReply{}).index(), 1u);
  EXPECT_EQ(Message(Proof{}).index(), 2u);
  EXPECT_EQ(Message(Welcome{}).index(), 3u);
  EXPECT_EQ(Message(Refusal{}).index(), 4u);
  EXPECT_EQ(Message(Heartbeat{}).index(), 5u);
  EXPECT_EQ(Message(ViewUpdate{}).index(), 6u);
  EXPECT_EQ(Message(StateRequest{}).index(), 7u);
  EXPECT_EQ(Message(JoinRequest{}).index(), 8u);
  EXPECT_EQ(Message(JoinReply{}).index(), 9u);
  EXPECT_EQ(Message(CacheOp{}).index(), 10u);
  EXPECT_EQ(Message(CacheOpReply{}).index(), 11u);
  EXPECT_EQ(Message(Replicate{}).index(), 12u);
  EXPECT_EQ(Message(ReplicateAck{}).index(), 13u);
  EXPECT_EQ(Message(DigestRequest{}).index(), 14u);
  EXPECT_EQ(Message(DigestReply{}).index(), 15u);
  EXPECT_EQ(Message(BucketRequest{}).index(), 16u);
  EXPECT_EQ(Message(BucketRecords{}).index(), 17u);
  EXPECT_EQ(Message(DeployPush{}).index(), 18u);
  EXPECT_EQ(Message(DeployPushAck{}).index(), 19u);
  EXPECT_EQ(Message(DeployFetch{}).index(), 20u);
  EXPECT_EQ(Message(DeployPack{}).index(), 21u);
  EXPECT_EQ(std::variant_size_v<Message>, 22u);
  EXPECT_EQ(MessageName(Message(DeployPack{})), "DeployPack");
  EXPECT_EQ(MessageName(Message(CacheOp{})), "CacheOp");
  EXPECT_EQ(MessageName(Message(BucketRecords{})), "BucketRecords");
}

template <typename... Types>
void ExpectStoreMessages(bool expected, std::variant<Types...>* /*list*/) {
  const auto expect = [expected](const Message& message, bool is_store_type) {
    EXPECT_EQ(IsStoreMessage(message), expected) << MessageName(message);
    EXPECT_EQ(is_store_type, expected) << MessageName(message);
  };
  (expect(Message(Types{}), kIsStoreMessage<Types>), ...);
}

TEST(MessagesTest, StoreMessagesFollowTheClusterMessages) {
  EXPECT_EQ(std::variant_size_v<StoreMessage>, 8u);
  EXPECT_EQ(std::variant_size_v<ClusterMessage> + std::variant_size_v<StoreMessage> +
                std::variant_size_v<DeployMessage>,
            std::variant_size_v<Message>);
  ExpectStoreMessages(true, static_cast<StoreMessage*>(nullptr));
  ExpectStoreMessages(false, static_cast<ClusterMessage*>(nullptr));
  EXPECT_TRUE(IsStoreMessage(Message(CacheOp{})));
  EXPECT_TRUE(IsStoreMessage(Message(BucketRecords{})));
  EXPECT_FALSE(IsStoreMessage(Message(Heartbeat{})));
  EXPECT_FALSE(IsStoreMessage(Message(JoinReply{})));
  EXPECT_FALSE(IsStoreMessage(Message(DeployPush{})));
}

TEST(MessagesTest, DeployMessagesAreTheLastFour) {
  EXPECT_EQ(std::variant_size_v<DeployMessage>, 4u);
  EXPECT_TRUE(IsDeployMessage(Message(DeployPush{})));
  EXPECT_TRUE(IsDeployMessage(Message(DeployPack{})));
  EXPECT_FALSE(IsDeployMessage(Message(CacheOp{})));
  EXPECT_FALSE(IsDeployMessage(Message(Heartbeat{})));
}

TEST(MessagesTest, DeployPushRoundTrips) {
  DeployPush push{
      9, DeploymentTarget{"production/webapp/default/shop", std::string(40, 'a'), 77, "1.2"}, 10, 4,
      std::string("PA\0K", 5)};
  Result<Message> decoded = Decode(Encode(push));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const auto* back = std::get_if<DeployPush>(&*decoded);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->target, push.target);
  EXPECT_EQ(back->chunk, push.chunk);
  EXPECT_EQ(back->offset, 4u);
}

TEST(MessagesTest, HeartbeatCarriesItsEchoAndSessionCounts) {
  Heartbeat heartbeat;
  heartbeat.incarnation = 3;
  heartbeat.sent_steady_us = 1'000'000;
  heartbeat.echo_steady_us = 999'000;
  heartbeat.echo_held_us = 250;
  heartbeat.live_sessions = {0, 200, 7};
  Result<Message> decoded = Decode(Encode(heartbeat));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const auto* back = std::get_if<Heartbeat>(&*decoded);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->sent_steady_us, 1'000'000u);
  EXPECT_EQ(back->echo_steady_us, 999'000u);
  EXPECT_EQ(back->echo_held_us, 250u);
  EXPECT_EQ(back->live_sessions, (std::vector<uint64_t>{0, 200, 7}));
}

// A CacheOp is the flat array of its thirteen fields, as protocol 6 has sent it.
TEST(MessagesTest, CacheOpIsAFlatArrayOfItsFields) {
  const std::tuple<uint64_t, std::string, std::string, uint32_t, uint32_t, int64_t, std::string,
                   uint64_t, uint64_t, bool, uint64_t, uint32_t,
                   std::tuple<uint32_t, uint64_t, uint64_t>>
      shape{77,
            "session",
            "k1",
            4,  // Command::kSet
            9,
            -3,
            std::string("v\0lue", 5),
            1'234'567'890'123,
            5,
            true,
            0xfedc'ba98'7654'3210,
            2,
            {3, 44, 555}};
  EXPECT_EQ(Encode(SampleCacheOp()), EncodeShape(10, shape));
}

TEST(MessagesTest, StoreMessagesKeepTheirShape) {
  const Replicate replicate{8,    "objects",          "key",       "record-bytes",
                            true, RequestId{1, 2, 3}, "STORED\r\n"};
  EXPECT_EQ(Encode(replicate),
            EncodeShape(12, std::make_tuple(uint64_t{8}, std::string("objects"), std::string("key"),
                                            std::string("record-bytes"), true,
                                            std::make_tuple(uint32_t{1}, uint64_t{2}, uint64_t{3}),
                                            std::string("STORED\r\n"))));
  CacheOpReply reply{5, "END\r\n", true, false, "rec", true};
  EXPECT_EQ(Encode(reply), EncodeShape(11, std::make_tuple(uint64_t{5}, std::string("END\r\n"),
                                                           true, false, std::string("rec"), true)));
  EXPECT_EQ(Encode(ReplicateAck{6, true}), EncodeShape(13, std::make_tuple(uint64_t{6}, true)));
  EXPECT_EQ(
      Encode(BucketRequest{"c", 7, true, "after"}),
      EncodeShape(16, std::make_tuple(std::string("c"), uint32_t{7}, true, std::string("after"))));
}

TEST(MessagesTest, CacheOpRoundTrips) {
  Result<Message> decoded = Decode(Encode(SampleCacheOp()));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const auto* op = std::get_if<CacheOp>(&*decoded);
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(Encode(*op), Encode(SampleCacheOp()));
  EXPECT_EQ(op->key, "k1");
  EXPECT_EQ(op->key_command, SampleCacheOp().key_command);
  EXPECT_EQ(op->request, (RequestId{3, 44, 555}));
}

TEST(MessagesTest, MalformedBodyIsAnError) {
  // A CacheOp whose command is a string.
  const std::string frame = EncodeShape(
      10, std::make_tuple(uint64_t{1}, std::string("c"), std::string("k"), std::string("set")));
  Result<Message> decoded = Decode(frame);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("malformed CacheOp"), std::string::npos)
      << decoded.status().ToString();
  EXPECT_FALSE(Decode(EncodeShape(99, std::make_tuple(uint64_t{1}))).ok());
}

// The command travels as an unsigned number: a negative one is malformed, one
// past the known commands decodes (the owner answers it "ERROR").
TEST(MessagesTest, CacheOpCommandIsAnUnsignedNumber) {
  const auto with_command = [](auto command) {
    return EncodeShape(
        10, std::make_tuple(uint64_t{1}, std::string("c"), std::string("k"), command, uint32_t{0},
                            int64_t{0}, std::string(), uint64_t{0}, uint64_t{0}, false, uint64_t{0},
                            uint32_t{0}, std::make_tuple(0, 0, 0)));
  };
  EXPECT_FALSE(Decode(with_command(int32_t{-1})).ok());
  Result<Message> unknown = Decode(with_command(uint32_t{1000}));
  ASSERT_TRUE(unknown.ok()) << unknown.status().ToString();
  EXPECT_EQ(Encode(*unknown), with_command(uint32_t{1000}));
}

}  // namespace
}  // namespace cb::protocol
