import Foundation
@_exported import ModelFixtures
