import Foundation
@_exported import TestHelpers
import Testing


