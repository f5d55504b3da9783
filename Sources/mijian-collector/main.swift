import MijianCollectorCLI

await CollectorMain.run()
