// bulkhead-monitor: started by bulkheadd, one per running system container (daemon/monitor.cpp).
#include "daemon/monitor.hpp"

int main(int argc, char **argv) { return bulkhead::daemon::monitor_main(argc, argv); }
