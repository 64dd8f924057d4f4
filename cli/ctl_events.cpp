// events: the daemon's event stream, one line per event.
#include "cli/ctl.hpp"
#include "cli/ctl_format.hpp"

namespace bulkhead::ctl {

void add_event_commands(CLI::App &app, Action &chosen) {
  auto json_out = std::make_shared<bool>(false);
  auto *c = app.add_subcommand("events", "print events as they happen (until interrupted)");
  c->add_flag("--json", *json_out, "print the API's Event objects, one per line");
  c->callback([json_out, &chosen] {
    chosen = [json_out](Context &ctx) {
      auto client = ctx.client();
      auto streamed = client.stream("/1.0/events", [&](std::string_view line) {
        if (line.empty())
          return true;
        if (*json_out)
          return write_out(std::string(line) + "\n");
        auto event = nlohmann::json::parse(line, nullptr, false);
        // A line that is not an Event is shown as it came rather than dropped.
        return write_out((event.is_object() ? event_line(event) : std::string(line)) + "\n");
      });
      return streamed ? 0 : report(streamed.error());
    };
  });
}

} // namespace bulkhead::ctl
