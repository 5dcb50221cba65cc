// refused: enum values are integers
enum E {
  A = 1.5
}
