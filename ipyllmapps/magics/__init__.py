"""Thin IPython magics: parse the line, call models/ and the manager, render."""

MAGIC_CLASSES = [
    "ipyllmapps.magics.models:ModelsMagics",
    "ipyllmapps.magics.finetune:FinetuneMagics",
    "ipyllmapps.magics.image:ImageMagics",
    "ipyllmapps.magics.chat:ChatMagics",
    "ipyllmapps.magics.bank:BankMagics",
    "ipyllmapps.magics.speech:SpeechMagics",
    "ipyllmapps.magics.gan:GanMagics",
    "ipyllmapps.magics.classify:ClassifyMagics",
]
