#include "network/tc.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>

#include "bulkhead/revert.hpp"
#include "network/link.hpp"
#include "network/message.hpp"

namespace bulkhead::net {
namespace {

constexpr uint32_t kTbfHandle = 0x10000;        // 1:
constexpr uint32_t kIngressHandle = 0xffff0000; // ffff:
constexpr uint16_t kFilterPrio = 177;           // our u32 filter's preference on ffff:

tcmsg *put_tcmsg(Message &msg, int index, uint32_t parent, uint32_t handle) {
  auto *t = msg.put_struct<tcmsg>();
  t->tcm_family = AF_UNSPEC;
  t->tcm_ifindex = index;
  t->tcm_parent = parent;
  t->tcm_handle = handle;
  return t;
}

bool absent(const Error &e) { return e.code == ENOENT || e.code == EINVAL || e.code == ENODEV; }

// The root TBF of a link index, if that is what the root is.
Result<std::optional<Rate>> root_tbf(Netlink &nl, int index, std::string_view dev) {
  Message msg(RTM_GETQDISC, NLM_F_DUMP);
  put_tcmsg(msg, index, 0, 0);
  std::optional<Rate> out;
  BH_CHECK(nl.query(
      msg.hdr(),
      [&](const nlmsghdr *nlh) -> Status {
        if (nlh->nlmsg_type != RTM_NEWQDISC)
          return {};
        const auto *t = static_cast<const tcmsg *>(mnl_nlmsg_get_payload(nlh));
        if (t->tcm_ifindex != index || t->tcm_parent != TC_H_ROOT)
          return {};
        Attrs<TCA_MAX> a;
        a.parse_msg(nlh, sizeof *t);
        if (a.str(TCA_KIND) != "tbf" || !a[TCA_OPTIONS])
          return {};
        Attrs<TCA_TBF_MAX> o;
        o.parse_nested(a[TCA_OPTIONS]);
        if (!o[TCA_TBF_PARMS])
          return {};
        const auto *q = static_cast<const tc_tbf_qopt *>(mnl_attr_get_payload(o[TCA_TBF_PARMS]));
        uint64_t bytes = o[TCA_TBF_RATE64] ? mnl_attr_get_u64(o[TCA_TBF_RATE64]) : q->rate.rate;
        out = Rate{bytes * 8};
        return {};
      },
      fmt::format("listing qdiscs of {}", dev)));
  return out;
}

Status ensure_ingress_qdisc(Netlink &nl, int index, std::string_view dev, bool &created) {
  Message msg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL);
  put_tcmsg(msg, index, TC_H_INGRESS, kIngressHandle);
  msg.put_str(TCA_KIND, "ingress");
  auto r = nl.request(msg.hdr(), fmt::format("adding the ingress qdisc to {}", dev));
  created = r.has_value();
  if (!r && r.error().code == EEXIST)
    return {};
  return r;
}

Status delete_ingress_qdisc(Netlink &nl, int index, std::string_view dev) {
  Message msg(RTM_DELQDISC, 0);
  put_tcmsg(msg, index, TC_H_INGRESS, kIngressHandle);
  auto r = nl.request(msg.hdr(), fmt::format("deleting the ingress qdisc of {}", dev));
  if (!r && absent(r.error()))
    return {};
  return r;
}

Result<bool> has_redirect_filter(Netlink &nl, int index, std::string_view dev) {
  Message msg(RTM_GETTFILTER, NLM_F_DUMP);
  put_tcmsg(msg, index, kIngressHandle, 0);
  bool found = false;
  BH_CHECK(nl.query(
      msg.hdr(),
      [&](const nlmsghdr *nlh) -> Status {
        if (nlh->nlmsg_type != RTM_NEWTFILTER)
          return {};
        const auto *t = static_cast<const tcmsg *>(mnl_nlmsg_get_payload(nlh));
        Attrs<TCA_MAX> a;
        a.parse_msg(nlh, sizeof *t);
        if (TC_H_MAJ(t->tcm_info) >> 16 == kFilterPrio && a.str(TCA_KIND) == "u32")
          found = true;
        return {};
      },
      fmt::format("listing ingress filters of {}", dev)));
  return found;
}

// u32 "match u32 0 0" (every packet, any protocol) + mirred egress redirect to the IFB.
Status add_redirect_filter(Netlink &nl, int index, std::string_view dev, int ifb_index,
                           std::string_view ifb) {
  Message msg(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL);
  auto *t = put_tcmsg(msg, index, kIngressHandle, 0);
  t->tcm_info = TC_H_MAKE(static_cast<uint32_t>(kFilterPrio) << 16, htons(ETH_P_ALL));
  msg.put_str(TCA_KIND, "u32");
  auto *opts = msg.nest(TCA_OPTIONS);
  alignas(tc_u32_sel) char sel_buf[sizeof(tc_u32_sel) + sizeof(tc_u32_key)] = {};
  auto *sel = reinterpret_cast<tc_u32_sel *>(sel_buf);
  sel->flags = TC_U32_TERMINAL;
  sel->nkeys = 1; // one key: mask 0 at offset 0, which every packet matches
  msg.put(TCA_U32_SEL, sel_buf, sizeof sel_buf);
  auto *acts = msg.nest(TCA_U32_ACT);
  auto *act = msg.nest(1);
  msg.put_str(TCA_ACT_KIND, "mirred");
  auto *aopts = msg.nest(TCA_ACT_OPTIONS);
  tc_mirred m{};
  m.action = TC_ACT_STOLEN;
  m.eaction = TCA_EGRESS_REDIR;
  m.ifindex = static_cast<uint32_t>(ifb_index);
  msg.put_value(TCA_MIRRED_PARMS, m);
  msg.end(aopts);
  msg.end(act);
  msg.end(acts);
  msg.end(opts);
  return nl.request(msg.hdr(), fmt::format("redirecting ingress of {} to {}", dev, ifb));
}

} // namespace

std::string ifb_name(int dev_index) { return "bhifb" + std::to_string(dev_index); }

Status set_egress_limit(Netlink &nl, std::string_view dev, Rate rate, const ShapeOptions &opts) {
  auto link = BH_TRY(get_link(nl, dev));
  uint64_t bytes = rate.bytes_per_second();
  if (bytes == 0)
    return failf("rate {} for {} is below 1 byte/s", rate.str(), dev);
  uint32_t burst = opts.burst_bytes
                       ? opts.burst_bytes
                       : static_cast<uint32_t>(std::clamp<uint64_t>(bytes / 100, 16384, 1 << 26));
  // The queue holds latency_ms at the rate, but never less than two 64 KiB GSO packets: TBF splits
  // a GSO packet into its segments on enqueue, and a queue shorter than one would drop whole
  // trains of them, which holds TCP well under the cap at low rates.
  uint64_t limit = std::max<uint64_t>(bytes * opts.latency_ms / 1000, 2 * 65536) + burst;

  Message msg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE);
  put_tcmsg(msg, link.index, TC_H_ROOT, kTbfHandle);
  msg.put_str(TCA_KIND, "tbf");
  auto *o = msg.nest(TCA_OPTIONS);
  tc_tbf_qopt q{};
  q.rate.rate = static_cast<uint32_t>(std::min<uint64_t>(bytes, UINT32_MAX));
  q.rate.linklayer = TC_LINKLAYER_ETHERNET; // rates computed in the kernel, no rate table needed
  q.limit = static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX));
  msg.put_value(TCA_TBF_PARMS, q);
  if (bytes >= UINT32_MAX)
    msg.put_value<uint64_t>(TCA_TBF_RATE64, bytes);
  msg.put_u32(TCA_TBF_BURST, burst);
  msg.end(o);
  return nl.request(msg.hdr(), fmt::format("setting a {} tbf qdisc on {}", rate.str(), dev));
}

Status clear_egress_limit(Netlink &nl, std::string_view dev) {
  auto link = BH_TRY(find_link(nl, dev));
  if (!link || !BH_TRY(root_tbf(nl, link->index, dev)))
    return {};
  Message msg(RTM_DELQDISC, 0);
  put_tcmsg(msg, link->index, TC_H_ROOT, kTbfHandle);
  auto r = nl.request(msg.hdr(), fmt::format("deleting the tbf qdisc of {}", dev));
  if (!r && absent(r.error()))
    return {};
  return r;
}

Result<std::optional<Rate>> egress_limit(Netlink &nl, std::string_view dev) {
  auto link = BH_TRY(get_link(nl, dev));
  return root_tbf(nl, link.index, dev);
}

Status set_ingress_limit(Netlink &nl, std::string_view dev, Rate rate, const ShapeOptions &opts) {
  auto link = BH_TRY(get_link(nl, dev));
  std::string ifb = ifb_name(link.index);
  Revert undo;
  auto existing = BH_TRY(find_link(nl, ifb));
  if (existing && existing->kind != "ifb")
    return failf("link {} exists and is not an ifb (kind '{}')", ifb, existing->kind);
  std::optional<LinkGuard> created_ifb;
  if (!existing) {
    created_ifb.emplace(BH_TRY(create_ifb(nl, ifb, {0, fmt::format("bulkhead:ingress/{}", dev)})));
  }
  // A rate change on a configured link only replaces the IFB's TBF: traffic keeps flowing.
  BH_CHECK(set_egress_limit(nl, ifb, rate, opts));
  BH_CHECK(set_up(nl, ifb, true));
  auto ifb_link = BH_TRY(get_link(nl, ifb));
  bool created_qdisc = false;
  BH_CHECK(ensure_ingress_qdisc(nl, link.index, dev, created_qdisc));
  if (created_qdisc)
    undo.add([&nl, &link, dev] { (void)delete_ingress_qdisc(nl, link.index, dev); });
  if (!BH_TRY(has_redirect_filter(nl, link.index, dev)))
    BH_CHECK(add_redirect_filter(nl, link.index, dev, ifb_link.index, ifb));
  undo.commit();
  if (created_ifb)
    created_ifb->release();
  return {};
}

Status clear_ingress_limit(Netlink &nl, std::string_view dev) {
  auto link = BH_TRY(find_link(nl, dev));
  if (!link)
    return {};
  BH_CHECK(delete_ingress_qdisc(nl, link->index, dev)); // takes its filters along
  return ensure_link_absent(nl, ifb_name(link->index));
}

Result<std::optional<Rate>> ingress_limit(Netlink &nl, std::string_view dev) {
  auto link = BH_TRY(get_link(nl, dev));
  auto ifb = BH_TRY(find_link(nl, ifb_name(link.index)));
  if (!ifb || !BH_TRY(has_redirect_filter(nl, link.index, dev)))
    return std::optional<Rate>();
  return root_tbf(nl, ifb->index, ifb->name);
}

} // namespace bulkhead::net
