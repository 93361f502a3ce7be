// The library's enums as command-line values: ArgumentParser parses them by raw value and
// lists the choices in --help and in its error for a value that is none of them.

import ArgumentParser
import Checkpoints
import Circuits
import DePass
import Steering

extension SteeringSource: ExpressibleByArgument {}
extension SteeringRescale: ExpressibleByArgument {}
extension ChannelRanking: ExpressibleByArgument {}
extension AblationKind: ExpressibleByArgument {}
extension MLPRule: ExpressibleByArgument {}
extension FaithfulnessUnit: ExpressibleByArgument {}
extension CheckpointLayout: ExpressibleByArgument {}
