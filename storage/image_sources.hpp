// Container image sources: an OCI image layout directory and a `docker save` archive. Both are a
// list of layer tars applied in order with the OCI whiteout rules.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "bulkhead/result.hpp"
#include "storage/extractor.hpp"
#include "storage/import_context.hpp"

namespace bulkhead::storage {

// "PATH[:TAG]" where PATH may itself hold colons: the shortest prefix that exists (as a directory if
// `dir`, else as a file) is the path, the rest the tag. ENOENT if no prefix exists.
Result<std::pair<std::string, std::optional<std::string>>> split_path_tag(const std::string &ref, bool dir);

// OCI image layout: index.json -> (nested indexes) -> manifest -> layers, every blob checked against
// its sha256 digest (and size). The manifest is the one whose org.opencontainers.image.ref.name is TAG;
// without TAG, "latest", else the only one (or the one for this host's platform in a nested index).
Status import_oci_layout(const std::string &ref, Extractor &x, ImportContext &ctx);

// `docker save` output: manifest.json [{"Config","RepoTags","Layers"}]; with several images, TAG
// picks the one whose RepoTags holds it (with or without the "repo:" part).
Status import_docker_archive(const std::string &ref, Extractor &x, ImportContext &ctx);

} // namespace bulkhead::storage
