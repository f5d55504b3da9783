import MijianCLI

await MijianMain.run()
