#include <archive.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"
#include "storage/archive_source.hpp"
#include "storage/image_sources.hpp"
#include "storage/resolve.hpp"
#include "storage/sha256.hpp"

namespace bulkhead::storage {

using json = nlohmann::json;

Result<std::pair<std::string, std::optional<std::string>>> split_path_tag(const std::string &ref, bool dir) {
  auto is_ok = [dir](const std::string &p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
  };
  for (size_t pos = ref.find(':'); pos != std::string::npos; pos = ref.find(':', pos + 1)) {
    std::string path = ref.substr(0, pos);
    if (is_ok(path))
      return std::pair{path, std::optional<std::string>(ref.substr(pos + 1))};
  }
  if (is_ok(ref))
    return std::pair{ref, std::optional<std::string>()};
  return fail(fmt::format("{} {} does not exist", dir ? "directory" : "file", ref), ENOENT);
}

namespace {

constexpr std::string_view kRefName = "org.opencontainers.image.ref.name";
constexpr size_t kMaxJsonBlob = 16 << 20;

#if defined(__x86_64__)
constexpr std::string_view kHostArch = "amd64";
#elif defined(__aarch64__)
constexpr std::string_view kHostArch = "arm64";
#elif defined(__i386__)
constexpr std::string_view kHostArch = "386";
#else
constexpr std::string_view kHostArch = "";
#endif

struct Layout {
  std::string dir;
  UniqueFd fd;
};

std::string str_field(const json &j, const char *key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string ref_name(const json &desc) {
  auto it = desc.find("annotations");
  if (it == desc.end() || !it->is_object())
    return {};
  return str_field(*it, std::string(kRefName).c_str());
}

Result<UniqueFd> open_blob(const Layout &l, const json &desc, std::string &hex) {
  std::string digest = str_field(desc, "digest");
  hex = BH_TRY(context(parse_sha256_digest(digest), fmt::format("OCI layout {}", l.dir)));
  // The layout is not trusted either: its symlinks resolve inside it.
  auto fd = open_in_root(l.fd.get(), "blobs/sha256/" + hex, O_RDONLY);
  if (!fd)
    return fail(fmt::format("OCI layout {}: blob {}", l.dir, digest), fd.error().code);
  return fd;
}

Status check_digest(const Layout &l, const json &desc, const std::string &hex, const std::string &actual,
                    uint64_t bytes) {
  if (actual != hex)
    return fail(fmt::format("OCI layout {}: blob sha256:{} does not match its digest (content is sha256:{})",
                            l.dir, hex, actual),
                EINVAL);
  auto size = desc.find("size");
  if (size != desc.end() && size->is_number_unsigned() && size->get<uint64_t>() != bytes)
    return fail(fmt::format("OCI layout {}: blob sha256:{} has {} bytes, its descriptor says {}", l.dir, hex,
                            bytes, size->get<uint64_t>()),
                EINVAL);
  return {};
}

Result<json> load_json_blob(const Layout &l, const json &desc) {
  std::string hex;
  UniqueFd fd = BH_TRY(open_blob(l, desc, hex));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0 || static_cast<size_t>(st.st_size) > kMaxJsonBlob)
    return fail(fmt::format("OCI layout {}: JSON blob sha256:{} is too large", l.dir, hex), EINVAL);
  std::string text = BH_TRY(read_fd(fd.get(), "blob sha256:" + hex));
  BH_CHECK(check_digest(l, desc, hex, sha256_hex(text), text.size()));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(fmt::format("OCI layout {}: blob sha256:{} is not a JSON object", l.dir, hex), EINVAL);
  return j;
}

bool is_index(const json &desc_or_doc) {
  std::string mt = str_field(desc_or_doc, "mediaType");
  return mt == "application/vnd.oci.image.index.v1+json" ||
         mt == "application/vnd.docker.distribution.manifest.list.v2+json" ||
         (mt.empty() && desc_or_doc.contains("manifests"));
}

bool platform_matches(const json &desc) {
  auto p = desc.find("platform");
  return p != desc.end() && p->is_object() && str_field(*p, "os") == "linux" &&
         str_field(*p, "architecture") == kHostArch;
}

// want: the tag still to be found (empty once found); explicit: the user named it.
Result<json> select_manifest(const Layout &l, const json &index, std::string want, bool explicit_tag,
                             int depth) {
  if (depth > 4)
    return fail(fmt::format("OCI layout {}: indexes nested too deep", l.dir), EINVAL);
  auto ms = index.find("manifests");
  if (ms == index.end() || !ms->is_array() || ms->empty())
    return fail(fmt::format("OCI layout {}: an index lists no manifests", l.dir), EINVAL);

  const json *chosen = nullptr;
  if (!want.empty())
    for (const auto &d : *ms)
      if (d.is_object() && ref_name(d) == want) {
        chosen = &d;
        want.clear();
        break;
      }
  if (chosen == nullptr && ms->size() == 1)
    chosen = &(*ms)[0];
  if (chosen == nullptr && (want.empty() || !explicit_tag))
    for (const auto &d : *ms)
      if (d.is_object() && platform_matches(d)) {
        chosen = &d;
        break;
      }
  if (chosen == nullptr || !chosen->is_object()) {
    std::string names;
    for (const auto &d : *ms)
      if (std::string n = d.is_object() ? ref_name(d) : ""; !n.empty())
        names += (names.empty() ? "" : ", ") + n;
    return fail(fmt::format("OCI layout {}: no manifest {} (tags: {})", l.dir,
                            want.empty() ? "for this platform" : "tagged " + want,
                            names.empty() ? "none" : names),
                ENOENT);
  }

  json doc = BH_TRY(load_json_blob(l, *chosen));
  if (is_index(*chosen) || is_index(doc))
    return select_manifest(l, doc, want, explicit_tag, depth + 1);
  if (!want.empty() && explicit_tag)
    return fail(fmt::format("OCI layout {}: no manifest tagged {}", l.dir, want), ENOENT);
  return doc;
}

// libarchive reads the blob through this, so the bytes extracted are the bytes hashed: no window
// between checking a layer and reading it.
struct HashingReader {
  int fd;
  Sha256 sha;
  uint64_t bytes = 0;
  std::vector<char> buf = std::vector<char>(128 * 1024);
  const ImportContext *ctx;
};

la_ssize_t hashing_read(struct archive *a, void *client, const void **out) {
  auto *r = static_cast<HashingReader *>(client);
  for (;;) {
    ssize_t n = ::read(r->fd, r->buf.data(), r->buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      archive_set_error(a, errno, "reading the layer blob");
      return -1;
    }
    r->sha.update(r->buf.data(), static_cast<size_t>(n));
    r->bytes += static_cast<uint64_t>(n);
    *out = r->buf.data();
    return n;
  }
}

Status apply_layer(const Layout &l, const json &desc, size_t i, size_t n, Extractor &x, ImportContext &ctx) {
  std::string mt = str_field(desc, "mediaType");
  if (mt.find("encrypted") != std::string::npos)
    return fail(fmt::format("OCI layout {}: layer {} is encrypted ({})", l.dir, i, mt), ENOTSUP);
  std::string hex;
  UniqueFd fd = BH_TRY(open_blob(l, desc, hex));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0)
    return failf_errno("stat of layer blob sha256:{}", hex);

  HashingReader reader{fd.get(), {}, 0, std::vector<char>(128 * 1024), &ctx};
  ArchivePtr a = BH_TRY(new_tar_reader());
  if (archive_read_open(a.get(), &reader, nullptr, hashing_read, nullptr) != ARCHIVE_OK)
    return tl::unexpected(
        archive_failure(a.get(), fmt::format("OCI layout {}: layer sha256:{}", l.dir, hex)));
  x.begin_layer();
  std::string stage = fmt::format("layer {}/{}", i, n);
  BH_CHECK(extract_entries(
      a.get(), x, ctx, stage, static_cast<uint64_t>(st.st_size), [&] { return reader.bytes; },
      fmt::format("layer {}/{} (sha256:{})", i, n, hex)));
  // Tar's end-of-archive padding may follow what libarchive needed: hash it too.
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd.get(), buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return failf_errno("reading layer blob sha256:{}", hex);
    if (r == 0)
      break;
    reader.sha.update(buf, static_cast<size_t>(r));
    reader.bytes += static_cast<uint64_t>(r);
  }
  return check_digest(l, desc, hex, reader.sha.hex_digest(), reader.bytes);
}

} // namespace

Status import_oci_layout(const std::string &ref, Extractor &x, ImportContext &ctx) {
  auto [dir, tag] = BH_TRY(split_path_tag(ref, true));
  Layout l{dir, UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC))};
  if (!l.fd)
    return failf_errno("opening OCI layout {}", dir);
  auto index_fd = open_in_root(l.fd.get(), "index.json", O_RDONLY);
  if (!index_fd)
    return fail(fmt::format("OCI layout {}: index.json", dir), index_fd.error().code);
  std::string text = BH_TRY(read_fd(index_fd->get(), dir + "/index.json"));
  json index = json::parse(text, nullptr, false);
  if (index.is_discarded() || !index.is_object())
    return fail(fmt::format("OCI layout {}: index.json is not a JSON object", dir), EINVAL);

  json manifest = BH_TRY(select_manifest(l, index, tag.value_or("latest"), tag.has_value(), 0));
  auto layers = manifest.find("layers");
  if (layers == manifest.end() || !layers->is_array())
    return fail(fmt::format("OCI layout {}: the manifest has no layers array", dir), EINVAL);
  size_t n = layers->size();
  for (size_t i = 0; i < n; ++i)
    BH_CHECK(apply_layer(l, (*layers)[i], i + 1, n, x, ctx));
  return x.finish();
}

} // namespace bulkhead::storage
