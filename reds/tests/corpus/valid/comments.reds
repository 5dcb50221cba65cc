// dialect: both
/* Block comments /* nest */ and may span
   several lines. */
public func /* between tokens */ Commented() -> Int32 { // trailing
  // a line comment
  return /* inline */ 1;
}
