/// A problem with run-time input: weights, tensors, files. Always a message for the user, never a trap.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "error: " + message }
}
