// dialect: both
// Conditional compilation on an import.
@if(ModuleExists("Codeware"))
import Codeware.*

@if(!ModuleExists("Codeware"))
public func CodewareMissing() -> Bool {
  return true;
}
