#include "sidecar/deploy/git_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "sidecar/testing/temp_dir.h"

namespace cb::deploy {
namespace {

using cb::testing_support::TempDir;

DeployTree MakeTree(std::vector<TreeEntry> entries) {
  DeployTree tree;
  std::sort(entries.begin(), entries.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  for (const TreeEntry& entry : entries) tree.total_bytes += entry.bytes.size();
  tree.entries = std::move(entries);
  return tree;
}

std::string RandomBytes(std::mt19937_64& random, size_t size) {
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

std::unique_ptr<GitStore> OpenStore(const std::string& path) {
  Result<std::unique_ptr<GitStore>> store = GitStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store.value()) : nullptr;
}

CommitId MustCommit(GitStore& store, const DeployTree& tree, const CommitId& parent,
                    std::string_view message = "deploy") {
  Result<CommitResult> result = store.Commit(tree, parent, "Ann Admin", "ann@example.com", message);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? result->commit : "";
}

// What a checkout holds: path -> "file:<mode>:<bytes>" or "link:<target>".
std::map<std::string, std::string> ReadBack(const std::string& directory) {
  std::map<std::string, std::string> found;
  for (const auto& item : std::filesystem::recursive_directory_iterator(directory)) {
    const std::string relative = item.path().lexically_relative(directory).string();
    struct stat st {};
    EXPECT_EQ(::lstat(item.path().c_str(), &st), 0);
    if (S_ISLNK(st.st_mode)) {
      found[relative] = "link:" + std::filesystem::read_symlink(item.path()).string();
    } else if (S_ISREG(st.st_mode)) {
      std::ifstream in(item.path(), std::ios::binary);
      std::stringstream content;
      content << in.rdbuf();
      std::ostringstream mode;
      mode << std::oct << (st.st_mode & 07777);
      found[relative] = "file:" + mode.str() + ":" + content.str();
    }
  }
  return found;
}

std::map<std::string, std::string> Expected(const DeployTree& tree) {
  std::map<std::string, std::string> expected;
  for (const TreeEntry& entry : tree.entries) {
    switch (entry.kind) {
      case EntryKind::kFile:
        expected[entry.path] = "file:644:" + entry.bytes;
        break;
      case EntryKind::kExecutable:
        expected[entry.path] = "file:755:" + entry.bytes;
        break;
      case EntryKind::kSymlink:
        expected[entry.path] = "link:" + entry.bytes;
        break;
    }
  }
  return expected;
}

size_t CountFiles(const std::string& directory) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& item : std::filesystem::directory_iterator(directory)) ++count;
  return count;
}

const DeployTree kShop = MakeTree({
    {"index.html", EntryKind::kFile, "<h1>shop</h1>\n"},
    {"bin/start", EntryKind::kExecutable, "#!/bin/sh\necho started\n"},
    {"WEB-INF/web.xml", EntryKind::kFile, "<web-app/>\n"},
    {"WEB-INF/lib/app.jar", EntryKind::kFile, std::string("PK\3\4\0binary\0", 13)},
    {"static", EntryKind::kSymlink, "WEB-INF/lib"},
    {"empty.txt", EntryKind::kFile, ""},
});

TEST(GitStoreTest, OpenCreatesABareRepositoryAndItsParents) {
  TempDir dir("git_store");
  const std::string path = dir.path() + "/data/deploy/repo.git";
  {
    auto store = OpenStore(path);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->path(), path);
  }
  EXPECT_TRUE(std::filesystem::exists(path + "/HEAD"));
  EXPECT_TRUE(std::filesystem::is_directory(path + "/objects"));
  auto reopened = OpenStore(path);
  ASSERT_NE(reopened, nullptr);
}

TEST(GitStoreTest, TheUsersGitConfigurationIsNeverRead) {
  // A HOME whose .gitconfig libgit2 cannot parse: read, it would fail every open.
  TempDir dir("git_store");
  std::ofstream(dir.path() + "/.gitconfig") << "[core\n\tbroken = \"\n";
  std::filesystem::create_directories(dir.path() + "/.config/git");
  std::ofstream(dir.path() + "/.config/git/config") << "[core\n";
  const char* saved = std::getenv("HOME");
  const std::string old_home = saved != nullptr ? saved : "";
  ::setenv("HOME", dir.path().c_str(), 1);
  ::setenv("XDG_CONFIG_HOME", (dir.path() + "/.config").c_str(), 1);
  {
    auto store = OpenStore(dir.path() + "/deploy.git");
    ASSERT_NE(store, nullptr);
    EXPECT_FALSE(MustCommit(*store, kShop, "").empty());
  }
  ::unsetenv("XDG_CONFIG_HOME");
  if (saved != nullptr) {
    ::setenv("HOME", old_home.c_str(), 1);
  } else {
    ::unsetenv("HOME");
  }
}

TEST(GitStoreTest, OpenOfSomethingThatIsNotARepositoryFails) {
  TempDir dir("git_store");
  std::ofstream(dir.path() + "/file") << "x";
  Result<std::unique_ptr<GitStore>> store = GitStore::Open(dir.path() + "/file");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(dir.path() + "/file"), std::string::npos)
      << store.status().ToString();
}

TEST(GitStoreTest, CommitThenTheSameTreeAgainIsUnchanged) {
  TempDir dir("git_store");
  auto store = OpenStore(dir.path() + "/repo");
  ASSERT_NE(store, nullptr);
  Result<CommitResult> first = store->Commit(kShop, "", "Ann Admin", "ann@example.com", "v1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->unchanged);
  EXPECT_EQ(first->commit.size(), 40u);
  EXPECT_TRUE(store->HasCommit(first->commit));

  Result<CommitInfo> info = store->Describe(first->commit);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->commit, first->commit);
  EXPECT_EQ(info->tree, first->tree);
  EXPECT_EQ(info->parent, "");
  EXPECT_EQ(info->author, "Ann Admin <ann@example.com>");
  EXPECT_EQ(info->message, "v1");
  EXPECT_GT(info->time_unix_s, 1'600'000'000);

  Result<CommitResult> again = store->Commit(kShop, first->commit, "Bob", "bob@example.com", "v2");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(again->commit, first->commit);
  EXPECT_EQ(again->tree, first->tree);

  DeployTree changed = kShop;
  changed.entries[0].bytes += "more";
  Result<CommitResult> second =
      store->Commit(changed, first->commit, "Bob", "bob@example.com", "v3");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->unchanged);
  EXPECT_NE(second->tree, first->tree);
  EXPECT_EQ(store->Describe(second->commit)->parent, first->commit);
}

TEST(GitStoreTest, TheSameContentIsTheSameTreeInAnyStore) {
  TempDir dir("git_store");
  auto a = OpenStore(dir.path() + "/a");
  auto b = OpenStore(dir.path() + "/b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Result<CommitResult> in_a = a->Commit(kShop, "", "Ann", "ann@example.com", "one");
  Result<CommitResult> in_b = b->Commit(kShop, "", "Bob", "bob@example.com", "another");
  ASSERT_TRUE(in_a.ok() && in_b.ok());
  EXPECT_EQ(in_a->tree, in_b->tree);
  EXPECT_NE(in_a->commit, in_b->commit);

  DeployTree executable = kShop;
  for (TreeEntry& entry : executable.entries) {
    if (entry.path == "index.html") entry.kind = EntryKind::kExecutable;
  }
  Result<CommitResult> mode_changed = a->Commit(executable, "", "Ann", "ann@example.com", "x");
  ASSERT_TRUE(mode_changed.ok());
  EXPECT_NE(mode_changed->tree, in_a->tree) << "the mode is part of the tree";
}

TEST(GitStoreTest, CommitOfAnEmptyTreeAndOnAnUnknownParent) {
  TempDir dir("git_store");
  auto store = OpenStore(dir.path() + "/repo");
  ASSERT_NE(store, nullptr);
  Result<CommitResult> empty = store->Commit(DeployTree{}, "", "Ann", "ann@example.com", "none");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->tree, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");  // Git's empty tree

  Result<CommitResult> orphan = store->Commit(kShop, std::string(40, 'a'), "Ann", "a@b.c", "m");
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.status().code(), Status::Code::kNotFound);
  Result<CommitResult> malformed = store->Commit(kShop, "HEAD", "Ann", "a@b.c", "m");
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.status().code(), Status::Code::kInvalidArgument);
}

TEST(GitStoreTest, CommitRefusesPathsThatCannotBeATreeNamingThem) {
  TempDir dir("git_store");
  auto store = OpenStore(dir.path() + "/repo");
  ASSERT_NE(store, nullptr);
  const std::vector<std::pair<DeployTree, std::string>> cases = {
      {MakeTree({{"a", EntryKind::kFile, "x"}, {"a/b", EntryKind::kFile, "y"}}), "a/b"},
      {MakeTree({{"a/b", EntryKind::kFile, "x"}, {"a/b/c", EntryKind::kSymlink, "y"}}), "a/b/c"},
      {MakeTree({{"a/b", EntryKind::kFile, "x"}, {"a/b", EntryKind::kFile, "y"}}), "a/b"},
      {MakeTree({{"a//b", EntryKind::kFile, "x"}}), "a//b"},
      {MakeTree({{"a/../b", EntryKind::kFile, "x"}}), "a/../b"},
      {MakeTree({{"/etc/passwd", EntryKind::kFile, "x"}}), "/etc/passwd"},
      {MakeTree({{"x/.git", EntryKind::kFile, "x"}}), "x/.git"},
  };
  for (const auto& [tree, bad] : cases) {
    Result<CommitResult> result = store->Commit(tree, "", "Ann", "ann@example.com", "m");
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(result.status().message().rfind(bad + ":", 0), 0u) << result.status().ToString();
  }
}

TEST(GitStoreTest, CommitTreeOfRollsBackAsANewCommit) {
  TempDir dir("git_store");
  auto store = OpenStore(dir.path() + "/repo");
  ASSERT_NE(store, nullptr);
  const CommitId v1 = MustCommit(*store, kShop, "");
  DeployTree changed = kShop;
  changed.entries.pop_back();
  const CommitId v2 = MustCommit(*store, changed, v1);
  Result<CommitResult> rollback =
      store->CommitTreeOf(v1, v2, "Ann", "ann@example.com", "rollback to v1");
  ASSERT_TRUE(rollback.ok()) << rollback.status().ToString();
  EXPECT_FALSE(rollback->unchanged);
  EXPECT_EQ(rollback->tree, store->Describe(v1)->tree);
  EXPECT_EQ(store->Describe(rollback->commit)->parent, v2);

  Result<CommitResult> again = store->CommitTreeOf(v1, rollback->commit, "Ann", "a@b.c", "again");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(again->commit, rollback->commit);

  Result<CommitResult> unknown = store->CommitTreeOf(std::string(40, 'b'), v2, "Ann", "a@b.c", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);
}

TEST(GitStoreTest, HistoryIsTheFirstParentChainNewestFirst) {
  TempDir dir("git_store");
  auto store = OpenStore(dir.path() + "/repo");
  ASSERT_NE(store, nullptr);
  std::vector<CommitId> commits;
  CommitId parent;
  for (int i = 0; i < 4; ++i) {
    parent = MustCommit(*store, MakeTree({{"v", EntryKind::kFile, std::to_string(i)}}), parent,
                        "version " + std::to_string(i));
    commits.push_back(parent);
  }
  Result<std::vector<CommitInfo>> all = store->History(commits.back(), 10);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*all)[i].commit, commits[3 - i]);
    EXPECT_EQ((*all)[i].message, "version " + std::to_string(3 - i));
  }
  Result<std::vector<CommitInfo>> two = store->History(commits.back(), 2);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].commit, commits[2]);
  EXPECT_FALSE(store->History(std::string(40, 'c'), 5).ok());
}

TEST(GitStoreTest, RefsAreSetMovedReadAndListedByPrefix) {
  TempDir dir("git_store");
  auto store = OpenStore(dir.path() + "/repo");
  ASSERT_NE(store, nullptr);
  const CommitId v1 = MustCommit(*store, kShop, "");
  const CommitId v2 = MustCommit(*store, MakeTree({{"a", EntryKind::kFile, "b"}}), v1);
  const std::string shop = "refs/tags/" + DeploymentName("production", "default", "shop");
  const std::string blog = "refs/tags/" + DeploymentName("production", "default", "blog");
  const std::string staged = "refs/tags/" + DeploymentName("staging", "default", "shop");

  Result<std::optional<CommitId>> missing = store->ReadRef(shop);
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(store->SetRef(shop, v1).ok());
  ASSERT_TRUE(store->SetRef(VersionTagName(shop, "1.0"), v1).ok());
  ASSERT_TRUE(store->SetRef(blog, v2).ok());
  ASSERT_TRUE(store->SetRef(staged, v2).ok());
  EXPECT_EQ(store->ReadRef(shop)->value_or(""), v1);
  ASSERT_TRUE(store->SetRef(shop, v2).ok());
  EXPECT_EQ(store->ReadRef(shop)->value_or(""), v2);

  Result<std::vector<std::pair<std::string, CommitId>>> production =
      store->ListRefs("refs/tags/production/");
  ASSERT_TRUE(production.ok()) << production.status().ToString();
  const std::vector<std::pair<std::string, CommitId>> expected = {
      {"refs/tags/production/webapp/default/blog", v2},
      {"refs/tags/production/webapp/default/shop", v2},
      {"refs/tags/production/webapp/default/shop-1.0", v1},
  };
  EXPECT_EQ(*production, expected);
  EXPECT_EQ(store->ListRefs("refs/tags/")->size(), 4u);
  EXPECT_TRUE(store->ListRefs("refs/tags/nothing/")->empty());

  const Status unknown = store->SetRef(shop, std::string(40, 'd'));
  EXPECT_EQ(unknown.code(), Status::Code::kNotFound) << unknown.ToString();
  EXPECT_EQ(store->ReadRef(shop)->value_or(""), v2);
  const Status bad_name = store->SetRef("refs/tags/a..b", v1);
  EXPECT_EQ(bad_name.code(), Status::Code::kInvalidArgument) << bad_name.ToString();
  EXPECT_FALSE(store->SetRef("not-under-refs", v1).ok());
}

TEST(GitStoreTest, AOneFileChangePacksOnlyThatFileAndItsPath) {
  TempDir dir("git_store");
  auto a = OpenStore(dir.path() + "/a");
  auto b = OpenStore(dir.path() + "/b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::mt19937_64 random(13);
  std::vector<TreeEntry> entries;
  for (int i = 0; i < 200; ++i) {
    entries.push_back({"app/dir" + std::to_string(i % 10) + "/file" + std::to_string(i),
                       EntryKind::kFile, RandomBytes(random, 10 * 1024)});
  }
  const DeployTree v1_tree = MakeTree(entries);
  const CommitId v1 = MustCommit(*a, v1_tree, "");
  DeployTree v2_tree = v1_tree;
  v2_tree.entries[57].bytes = RandomBytes(random, 10 * 1024);
  const CommitId v2 = MustCommit(*a, v2_tree, v1);

  Result<std::string> full = a->MakePack(v1, {});
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_GT(full->size(), v1_tree.total_bytes);  // random bytes do not compress

  Result<std::string> delta = a->MakePack(v2, {v1});
  ASSERT_TRUE(delta.ok()) << delta.status().ToString();
  // One 10 KB blob, three trees, one commit: far below the 2 MB tree.
  EXPECT_LT(delta->size(), 16u * 1024) << delta->size();
  EXPECT_GT(delta->size(), 10u * 1024);

  // B gets v1 whole, then only the change, and checks out v2 byte for byte.
  ASSERT_TRUE(b->AddPack(*full).ok());
  EXPECT_TRUE(b->HasCommit(v1));
  EXPECT_FALSE(b->HasCommit(v2));
  const Status added = b->AddPack(*delta);
  ASSERT_TRUE(added.ok()) << added.ToString();
  EXPECT_TRUE(b->HasCommit(v2));
  ASSERT_TRUE(b->CheckoutTo(v2, dir.path() + "/out").ok());
  EXPECT_EQ(ReadBack(dir.path() + "/out"), Expected(v2_tree));

  // Unknown haves are ignored: the whole history of want.
  Result<std::string> with_unknown = a->MakePack(v2, {std::string(40, 'e')});
  ASSERT_TRUE(with_unknown.ok());
  EXPECT_GT(with_unknown->size(), full->size());
  EXPECT_EQ(a->MakePack(v2, {"zz"}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(a->MakePack(std::string(40, 'e'), {}).status().code(), Status::Code::kNotFound);
}

TEST(GitStoreTest, AFullPackCarriesTheWholeHistory) {
  TempDir dir("git_store");
  auto a = OpenStore(dir.path() + "/a");
  auto b = OpenStore(dir.path() + "/b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const CommitId v1 = MustCommit(*a, kShop, "");
  const CommitId v2 = MustCommit(*a, MakeTree({{"x", EntryKind::kFile, "y"}}), v1);
  Result<std::string> pack = a->MakePack(v2, {});
  ASSERT_TRUE(pack.ok());
  ASSERT_TRUE(b->AddPack(*pack).ok());
  EXPECT_TRUE(b->HasCommit(v1));
  EXPECT_TRUE(b->HasCommit(v2));
  Result<std::vector<CommitInfo>> history = b->History(v2, 10);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), 2u);
  // Adding what is already there is harmless.
  EXPECT_TRUE(b->AddPack(*pack).ok());
}

TEST(GitStoreTest, ABadPackIsRefusedAndLeavesNothing) {
  TempDir dir("git_store");
  auto a = OpenStore(dir.path() + "/a");
  auto b = OpenStore(dir.path() + "/b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const CommitId v1 = MustCommit(*a, kShop, "");
  const CommitId v2 = MustCommit(*a, MakeTree({{"x", EntryKind::kFile, "new"}}), v1);
  Result<std::string> pack = a->MakePack(v2, {v1});
  ASSERT_TRUE(pack.ok());
  const std::string pack_dir = dir.path() + "/b/objects/pack";
  const size_t files_before = CountFiles(pack_dir);

  std::string flipped = *pack;
  flipped[flipped.size() / 2] ^= 0x5a;
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"garbage", "this is not a pack at all, just some bytes"},
      {"empty", ""},
      {"truncated", pack->substr(0, pack->size() - 25)},
      {"flipped", flipped},
  };
  for (const auto& [name, bytes] : bad) {
    const Status s = b->AddPack(bytes);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << name << ": " << s.ToString();
    EXPECT_EQ(CountFiles(pack_dir), files_before) << name;
  }
  EXPECT_FALSE(b->HasCommit(v2));
}

TEST(GitStoreTest, APackWhoseBaseIsMissingIsRefused) {
  TempDir dir("git_store");
  auto a = OpenStore(dir.path() + "/a");
  auto b = OpenStore(dir.path() + "/b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const CommitId v1 = MustCommit(*a, kShop, "");
  DeployTree changed = kShop;
  changed.entries[0].bytes = "changed";
  const CommitId v2 = MustCommit(*a, changed, v1);
  Result<std::string> pack = a->MakePack(v2, {v1});
  ASSERT_TRUE(pack.ok());
  // B never had v1: the pack's trees name blobs B lacks.
  const Status s = b->AddPack(*pack);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_FALSE(b->HasCommit(v2));
}

TEST(GitStoreTest, CheckoutWritesBytesModesAndSymlinks) {
  TempDir dir("git_store");
  auto store = OpenStore(dir.path() + "/repo");
  ASSERT_NE(store, nullptr);
  const CommitId v1 = MustCommit(*store, kShop, "");
  const mode_t old_umask = ::umask(077);
  const Status s = store->CheckoutTo(v1, dir.path() + "/out");
  ::umask(old_umask);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadBack(dir.path() + "/out"), Expected(kShop));
  EXPECT_TRUE(std::filesystem::is_symlink(dir.path() + "/out/static"));
  EXPECT_EQ(std::filesystem::read_symlink(dir.path() + "/out/static"), "WEB-INF/lib");
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() + "/out/WEB-INF/lib"));
}

TEST(GitStoreTest, CheckoutNeverWritesOverAnythingAndLeavesNothingOnError) {
  TempDir dir("git_store");
  auto store = OpenStore(dir.path() + "/repo");
  ASSERT_NE(store, nullptr);
  const CommitId v1 = MustCommit(*store, kShop, "");
  std::filesystem::create_directory(dir.path() + "/exists");
  std::ofstream(dir.path() + "/exists/keep") << "mine";
  const Status exists = store->CheckoutTo(v1, dir.path() + "/exists");
  EXPECT_FALSE(exists.ok());
  EXPECT_NE(exists.message().find(dir.path() + "/exists"), std::string::npos) << exists.ToString();
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/exists/keep"));

  const Status unknown = store->CheckoutTo(std::string(40, 'f'), dir.path() + "/none");
  EXPECT_EQ(unknown.code(), Status::Code::kNotFound) << unknown.ToString();
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/none"));
}

TEST(GitStoreTest, TagNamesAreResins) {
  EXPECT_EQ(DeploymentName("production", "default", "shop"), "production/webapp/default/shop");
  EXPECT_EQ(VersionTagName("production/webapp/default/shop", "1.2"),
            "production/webapp/default/shop-1.2");
  const std::vector<std::string> good_names = {"shop", "a",   "my_app-2.0",
                                               "ROOT", "1.0", std::string(63, 'x')};
  for (const std::string& good : good_names) {
    EXPECT_TRUE(IsValidTagPart(good)) << good;
  }
  const std::vector<std::string> bad_names = {"",
                                              "x.",
                                              ".hidden",
                                              "-x",
                                              "a..b",
                                              "a/b",
                                              "a b",
                                              "a\\b",
                                              "caf\xc3\xa9",
                                              "x.lock",
                                              "a*",
                                              "a:b",
                                              "a~1",
                                              "a^",
                                              "a@{1}",
                                              std::string(64, 'x')};
  for (const std::string& bad : bad_names) {
    EXPECT_FALSE(IsValidTagPart(bad)) << bad;
  }
}

}  // namespace
}  // namespace cb::deploy
