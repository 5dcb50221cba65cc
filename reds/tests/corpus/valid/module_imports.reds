// dialect: both
// A module path, then the three import forms.
module Demo.Corpus
import Std.*
import Codeware.{UI, Localization}
import Base.Exact.Path

public func ModuleImportsWork() -> Bool {
  return true;
}
