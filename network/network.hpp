// bulkhead's network library, the one header to include: links, addresses, routes, sysctls, tc
// bandwidth caps and IPAM over rtnetlink (libmnl), each optionally inside a given network namespace
// (open the Netlink there). Design, messages and the daemon plan: docs/network.md.
#pragma once

#include "network/address.hpp"
#include "network/announce.hpp"
#include "network/ip.hpp"
#include "network/ipam.hpp"
#include "network/link.hpp"
#include "network/netlink.hpp"
#include "network/netns.hpp"
#include "network/route.hpp"
#include "network/sysctl.hpp"
#include "network/tc.hpp"
