#include "agent/commands.h"
namespace sync_agent {
int CmdServe(const std::vector<std::string>&) { return kExitFailed; }  // replaced below
}
