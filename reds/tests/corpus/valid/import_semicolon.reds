// dialect: 1.0
// `import …;` and an import after a declaration (1.0).
import Std.*;

public func First() -> Void {}

import Other.Thing
