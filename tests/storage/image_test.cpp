// OCI image layouts and docker-archive files, built here with real digests.
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "storage/sha256.hpp"

namespace bulkhead::storage::test {
namespace {

using json = nlohmann::json;

constexpr const char *kManifestType = "application/vnd.oci.image.manifest.v1+json";
constexpr const char *kIndexType = "application/vnd.oci.image.index.v1+json";

// Layer 1 lays out files; layer 2 deletes some with whiteouts and makes directories opaque.
void write_layers(const std::string &l1, const std::string &l2) {
  {
    TarBuilder t(l1, Compression::Gzip);
    t.dir("a").file("a/keep", "keep\n").file("a/gone", "gone\n").dir("a/gonedir").file("a/gonedir/f", "f");
    t.dir("opq").file("opq/old", "old").dir("opq/sub").file("opq/sub/deep", "deep");
    t.dir("c").file("c/old", "old");
    t.file("etc/version", "1\n");
  }
  {
    TarBuilder t(l2);
    t.file("a/.wh.gone", "").file("a/.wh.gonedir", "");
    t.dir("opq").file("opq/.wh..wh..opq", "").file("opq/new", "new");
    // Opaque marker after a sibling of the same layer: the sibling stays.
    t.file("c/new", "new").file("c/.wh..wh..opq", "");
    // A whiteout for something this same layer wrote does not apply.
    t.file("d", "d").file(".wh.d", "");
    t.file("etc/version", "2\n");
  }
}

json descriptor(const char *media_type, const std::string &data) {
  return {{"mediaType", media_type}, {"digest", "sha256:" + sha256_hex(data)}, {"size", data.size()}};
}

std::string put_blob(const std::string &layout, const std::string &data) {
  std::string hex = sha256_hex(data);
  spit(layout + "/blobs/sha256/" + hex, data);
  return hex;
}

struct Layout {
  std::string dir;
  std::string layer1_hex;
};

// index.json -> manifest (tag `tag`), or index.json -> nested index -> per-platform manifests.
Layout write_oci_layout(const TempDir &tmp, const std::string &name, const std::string &tag, bool nested) {
  std::string dir = tmp / name;
  sh("mkdir -p '" + dir + "/blobs/sha256'");
  spit(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  write_layers(tmp / (name + "-l1.tar.gz"), tmp / (name + "-l2.tar"));
  std::string l1 = slurp(tmp / (name + "-l1.tar.gz")), l2 = slurp(tmp / (name + "-l2.tar"));
  Layout out{dir, put_blob(dir, l1)};
  put_blob(dir, l2);
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})";
  put_blob(dir, config);
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", kManifestType},
                   {"config", descriptor("application/vnd.oci.image.config.v1+json", config)},
                   {"layers",
                    {descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l1),
                     descriptor("application/vnd.oci.image.layer.v1.tar", l2)}}};
  std::string m = manifest.dump();
  put_blob(dir, m);
  json mdesc = descriptor(kManifestType, m);
  json index;
  if (!nested) {
    mdesc["annotations"] = {{"org.opencontainers.image.ref.name", tag}};
    index = {{"schemaVersion", 2}, {"manifests", {mdesc}}};
  } else {
    // A decoy manifest for another platform (its blob is not even present) comes first.
    json other = {{"mediaType", kManifestType},
                  {"digest", "sha256:" + std::string(64, 'e')},
                  {"size", 10},
                  {"platform", {{"os", "linux"}, {"architecture", "s390x"}}}};
    mdesc["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
    json inner = {{"schemaVersion", 2}, {"mediaType", kIndexType}, {"manifests", {other, mdesc}}};
    std::string in = inner.dump();
    put_blob(dir, in);
    json idesc = descriptor(kIndexType, in);
    idesc["annotations"] = {{"org.opencontainers.image.ref.name", tag}};
    index = {{"schemaVersion", 2}, {"manifests", {idesc}}};
  }
  spit(dir + "/index.json", index.dump());
  return out;
}

void expect_layered_result(const std::string &r) {
  EXPECT_EQ(slurp(r + "/a/keep"), "keep\n");
  EXPECT_FALSE(exists(r + "/a/gone"));
  EXPECT_FALSE(exists(r + "/a/gonedir"));
  EXPECT_FALSE(exists(r + "/a/.wh.gone"));
  EXPECT_FALSE(exists(r + "/opq/old")) << "opaque directory hides the lower layer";
  EXPECT_FALSE(exists(r + "/opq/sub"));
  EXPECT_EQ(slurp(r + "/opq/new"), "new");
  EXPECT_FALSE(exists(r + "/opq/.wh..wh..opq"));
  EXPECT_FALSE(exists(r + "/c/old"));
  EXPECT_EQ(slurp(r + "/c/new"), "new") << "opaque applies to lower layers only";
  EXPECT_EQ(slurp(r + "/d"), "d") << "a whiteout applies to lower layers only";
  EXPECT_EQ(slurp(r + "/etc/version"), "2\n");
}

TEST(OciLayout, TwoLayersWithWhiteoutsAndOpaqueDirs) {
  TempDir tmp;
  Layout l = write_oci_layout(tmp, "img", "v1", false);
  TemplateStore store(tmp / "root");
  std::vector<std::string> stages;
  auto info =
      store.import("oci", "oci:" + l.dir + ":v1", [&](const Progress &p) { stages.push_back(p.stage); });
  ASSERT_TRUE(info) << info.error().text();
  EXPECT_EQ(info->source, "oci:" + l.dir + ":v1");
  expect_layered_result(store.rootfs_path("oci"));
  EXPECT_NE(std::find(stages.begin(), stages.end(), "layer 1/2"), stages.end());
  EXPECT_NE(std::find(stages.begin(), stages.end(), "layer 2/2"), stages.end());

  // No tag: the only manifest.
  auto untagged = store.import("oci2", "oci:" + l.dir, nullptr);
  ASSERT_TRUE(untagged) << untagged.error().text();
  expect_layered_result(store.rootfs_path("oci2"));

  auto wrong = store.import("oci3", "oci:" + l.dir + ":v2", nullptr);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ENOENT);
  EXPECT_NE(wrong.error().text().find("v2"), std::string::npos) << wrong.error().text();
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

TEST(OciLayout, NestedIndexPicksThisPlatform) {
  TempDir tmp;
  Layout l = write_oci_layout(tmp, "img", "latest", true);
  TemplateStore store(tmp / "root");
  auto info = store.import("nested", "oci:" + l.dir, nullptr); // default tag "latest"
  ASSERT_TRUE(info) << info.error().text();
  expect_layered_result(store.rootfs_path("nested"));
}

TEST(OciLayout, CorruptBlobFailsDigestCheck) {
  TempDir tmp;
  Layout l = write_oci_layout(tmp, "img", "v1", false);
  // Same size, one byte changed at the end (in gzip's trailer: libarchive may not even notice).
  std::string blob = l.dir + "/blobs/sha256/" + l.layer1_hex;
  std::string data = slurp(blob);
  data.back() ^= 0x01;
  spit(blob, data);
  TemplateStore store(tmp / "root");
  auto info = store.import("bad", "oci:" + l.dir + ":v1", nullptr);
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().text().find(l.layer1_hex), std::string::npos) << info.error().text();
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
  EXPECT_FALSE(exists(tmp / "root/templates/bad"));
}

TEST(OciLayout, DigestThatIsAPathIsRefused) {
  TempDir tmp;
  Layout l = write_oci_layout(tmp, "img", "v1", false);
  json index = json::parse(slurp(l.dir + "/index.json"));
  index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd";
  spit(l.dir + "/index.json", index.dump());
  TemplateStore store(tmp / "root");
  auto info = store.import("bad", "oci:" + l.dir, nullptr);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().code, EINVAL);
  EXPECT_NE(info.error().text().find("not 64 lowercase hex"), std::string::npos) << info.error().text();
}

TEST(DockerArchive, ImportsLayersInOrder) {
  TempDir tmp;
  write_layers(tmp / "l1.tar.gz", tmp / "l2.tar");
  json manifest = json::array({{{"Config", "cfg.json"},
                                {"RepoTags", {"example/app:1.0"}},
                                {"Layers", {"aaa/layer.tar", "bbb/layer.tar"}}}});
  {
    TarBuilder t(tmp / "saved.tar");
    t.file("cfg.json", R"({"os":"linux"})");
    t.dir("aaa").file("aaa/layer.tar", slurp(tmp / "l1.tar.gz"));
    t.dir("bbb").file("bbb/layer.tar", slurp(tmp / "l2.tar"));
    t.file("manifest.json", manifest.dump());
  }
  TemplateStore store(tmp / "root");
  auto info = store.import("docker", "docker-archive:" + (tmp / "saved.tar"), nullptr);
  ASSERT_TRUE(info) << info.error().text();
  EXPECT_EQ(info->source, "docker-archive:" + (tmp / "saved.tar"));
  expect_layered_result(store.rootfs_path("docker"));

  auto tagged =
      store.import("docker2", "docker-archive:" + (tmp / "saved.tar") + ":example/app:1.0", nullptr);
  ASSERT_TRUE(tagged) << tagged.error().text();
  auto wrong = store.import("docker3", "docker-archive:" + (tmp / "saved.tar") + ":2.0", nullptr);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ENOENT);
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

TEST(DockerArchive, HostileLayerRefused) {
  TempDir tmp;
  {
    TarBuilder t(tmp / "evil-layer.tar");
    t.symlink("x", tmp / "outside").file("x/evil", "x");
  }
  json manifest =
      json::array({{{"Config", "c.json"}, {"RepoTags", json::array()}, {"Layers", {"l/layer.tar"}}}});
  {
    TarBuilder t(tmp / "saved.tar");
    t.file("l/layer.tar", slurp(tmp / "evil-layer.tar")).file("manifest.json", manifest.dump());
  }
  TemplateStore store(tmp / "root");
  auto info = store.import("evil", "docker-archive:" + (tmp / "saved.tar"), nullptr);
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().text().find("x/evil"), std::string::npos) << info.error().text();
  EXPECT_FALSE(exists(tmp / "outside"));
  EXPECT_TRUE(staging_dirs(tmp / "root").empty());
}

} // namespace
} // namespace bulkhead::storage::test
